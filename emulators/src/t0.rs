//! The card as a T=0 card answers (ISO/IEC 7816-3 10.3, 7816-4 5.1.3), pure: an answer
//! with data is announced as `61xx` (xx bytes waiting, 00 for 256) and handed out by GET
//! RESPONSE `00 C0 00 00 Le`, in pieces of at most Le bytes; a GET RESPONSE asking for
//! more than is waiting gets `6Cxx` (ask again with Le = xx). Any other command drops
//! what was waiting. For testing the host's response chaining against a real reader
//! stack (`card-emulator --t0`).

/// GET RESPONSE with nothing waiting.
const NOTHING_WAITING: [u8; 2] = [0x69, 0x85];

/// The data of the last answer not yet fetched.
#[derive(Debug, Default)]
pub struct T0 {
    waiting: Vec<u8>,
}

/// `n` (1 to 256) as a one-byte length: 256 is 00.
fn len_byte(n: usize) -> u8 {
    (n % 256) as u8
}

impl T0 {
    /// Answers `apdu` as a T=0 card whose complete answer to it `process` gives.
    pub fn exchange(&mut self, apdu: &[u8], process: impl FnOnce(&[u8]) -> Vec<u8>) -> Vec<u8> {
        if let [0x00, 0xC0, 0x00, 0x00, le] = apdu {
            return self.get_response(*le);
        }
        self.waiting.clear();
        let answer = process(apdu);
        match answer.as_slice() {
            [data @ .., 0x90, 0x00] if !data.is_empty() => {
                self.waiting = data.to_vec();
                vec![0x61, len_byte(self.waiting.len().min(256))]
            }
            _ => answer,
        }
    }

    fn get_response(&mut self, le: u8) -> Vec<u8> {
        if self.waiting.is_empty() {
            return NOTHING_WAITING.to_vec();
        }
        let asked = if le == 0 { 256 } else { usize::from(le) };
        let available = self.waiting.len().min(256);
        if asked > available {
            return vec![0x6C, len_byte(available)];
        }
        let mut out: Vec<u8> = self.waiting.drain(..asked).collect();
        if self.waiting.is_empty() {
            out.extend_from_slice(&[0x90, 0x00]);
        } else {
            out.extend_from_slice(&[0x61, len_byte(self.waiting.len().min(256))]);
        }
        out
    }

    /// The card left the field: nothing waits any more.
    pub fn reset(&mut self) {
        self.waiting.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GET: [u8; 4] = [0x00, 0xC0, 0x00, 0x00];

    fn get(t: &mut T0, le: u8) -> Vec<u8> {
        let mut c = GET.to_vec();
        c.push(le);
        t.exchange(&c, |_| panic!("GET RESPONSE never reaches the applet"))
    }

    #[test]
    fn data_is_announced_then_handed_out_by_get_response() {
        let mut t = T0::default();
        let answer = |_: &[u8]| vec![1, 2, 3, 4, 5, 0x90, 0x00];
        assert_eq!(t.exchange(&[0x80, 0x54], answer), vec![0x61, 5]);
        // Too much asked: the card says how much to ask for.
        assert_eq!(get(&mut t, 0), vec![0x6C, 5]);
        assert_eq!(get(&mut t, 6), vec![0x6C, 5]);
        // In pieces, then the rest with the final status word.
        assert_eq!(get(&mut t, 2), vec![1, 2, 0x61, 3]);
        assert_eq!(get(&mut t, 3), vec![3, 4, 5, 0x90, 0x00]);
        assert_eq!(get(&mut t, 1), NOTHING_WAITING.to_vec());
    }

    #[test]
    fn status_words_pass_and_another_command_drops_what_waited() {
        let mut t = T0::default();
        assert_eq!(t.exchange(&[1], |_| vec![0x69, 0x82]), vec![0x69, 0x82]);
        assert_eq!(t.exchange(&[1], |_| vec![0x90, 0x00]), vec![0x90, 0x00]);
        t.exchange(&[1], |_| {
            vec![9; 300].into_iter().chain([0x90, 0]).collect()
        });
        // More than 256 waiting: 6100, and a full 256 first.
        assert_eq!(get(&mut t, 0).len(), 258);
        t.exchange(&[1], |_| vec![7, 0x90, 0x00]);
        t.exchange(&[2], |_| vec![0x6A, 0x83]);
        assert_eq!(get(&mut t, 1), NOTHING_WAITING.to_vec());
        t.exchange(&[1], |_| vec![7, 0x90, 0x00]);
        t.reset();
        assert_eq!(get(&mut t, 1), NOTHING_WAITING.to_vec());
    }
}
