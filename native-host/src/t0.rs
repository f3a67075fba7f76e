//! Response chaining of T=0 cards, sans-IO (ISO/IEC 7816-3 10.3, 7816-4 5.1.3): a card
//! that answers `61xx` has xx (00: 256) more bytes waiting, fetched with GET RESPONSE
//! `00 C0 00 00 xx` until the final status word; `6Cxx` asks for the same command again
//! with Le = xx. The host never relays either as the card's answer: a DEBIT that did
//! debit must never reach the shop as a bare `61xx` ("nothing debited").

use crate::catalogue::{ErrorCode, Failure};

/// The most exchanges one command may take (a purse answer needs two at most; 32 GET
/// RESPONSEs of 256 bytes are far beyond any of them).
pub const MAX_EXCHANGES: usize = 32;

/// Sends `apdu` with `send` (one exchange, whose answer has at least a status word) and
/// follows `61xx` and `6Cxx` to the card's complete answer: all data, then the final
/// status word.
pub fn exchange(
    apdu: &[u8],
    mut send: impl FnMut(&[u8]) -> Result<Vec<u8>, Failure>,
) -> Result<Vec<u8>, Failure> {
    let mut command = apdu.to_vec();
    let mut data = Vec::new();
    for _ in 0..MAX_EXCHANGES {
        let answer = send(&command)?;
        let [body @ .., sw1, sw2] = answer.as_slice() else {
            return Err(Failure::new(ErrorCode::CardRemoved, "no status word"));
        };
        match sw1 {
            0x61 => {
                data.extend_from_slice(body);
                command = vec![0x00, 0xC0, 0x00, 0x00, *sw2];
            }
            0x6C => command = with_le(&command, *sw2)?,
            _ => {
                data.extend_from_slice(body);
                data.extend_from_slice(&[*sw1, *sw2]);
                return Ok(data);
            }
        }
    }
    Err(Failure::new(
        ErrorCode::CardError,
        format!("the card's answer did not end within {MAX_EXCHANGES} exchanges (61xx/6Cxx)"),
    ))
}

/// `command` with its Le set to `le` (a short APDU of case 1 to 4).
fn with_le(command: &[u8], le: u8) -> Result<Vec<u8>, Failure> {
    let mut c = command.to_vec();
    let body = command.len().saturating_sub(4);
    let lc = command.get(4).map(|&b| usize::from(b));
    match (body, lc) {
        // Case 1 and 3: no Le yet.
        (0, _) => c.push(le),
        (n, Some(lc)) if n == 1 + lc && lc > 0 => c.push(le),
        // Case 2 (the one byte is Le) and case 4: replace it.
        (1, _) => c[4] = le,
        (n, Some(lc)) if n == 2 + lc => {
            let last = c.len() - 1;
            c[last] = le;
        }
        _ => {
            return Err(Failure::new(
                ErrorCode::CardError,
                "the card asked (6Cxx) to resend a command that is not a short APDU",
            ))
        }
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A card that answers `script` in order, recording what it was sent.
    fn run(apdu: &[u8], script: &[&[u8]]) -> (Result<Vec<u8>, Failure>, Vec<Vec<u8>>) {
        let mut sent = Vec::new();
        let mut answers = script.iter();
        let r = exchange(apdu, |c| {
            sent.push(c.to_vec());
            answers
                .next()
                .map(|a| a.to_vec())
                .ok_or_else(|| Failure::new(ErrorCode::CardRemoved, "script ended"))
        });
        (r, sent)
    }

    const DEBIT: [u8; 22] = [
        0x80, 0x54, 0, 0, 0x10, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];

    #[test]
    fn a_final_answer_passes_as_it_is() {
        let (r, sent) = run(&DEBIT, &[&[1, 2, 0x90, 0]]);
        assert_eq!(r, Ok(vec![1, 2, 0x90, 0]));
        assert_eq!(sent, vec![DEBIT.to_vec()]);
        let (r, _) = run(&DEBIT, &[&[0x69, 0x82]]);
        assert_eq!(r, Ok(vec![0x69, 0x82]));
    }

    #[test]
    fn get_response_fetches_and_concatenates_until_the_final_status_word() {
        let (r, sent) = run(
            &DEBIT,
            &[&[0x61, 0x14], &[1, 2, 3, 0x61, 0x02], &[4, 5, 0x90, 0x00]],
        );
        assert_eq!(r, Ok(vec![1, 2, 3, 4, 5, 0x90, 0]));
        assert_eq!(sent[1], vec![0x00, 0xC0, 0x00, 0x00, 0x14]);
        assert_eq!(sent[2], vec![0x00, 0xC0, 0x00, 0x00, 0x02]);
        // 6100 announces 256 bytes: GET RESPONSE with Le = 00.
        let (_, sent) = run(&DEBIT, &[&[0x61, 0x00], &[0x90, 0]]);
        assert_eq!(sent[1], vec![0x00, 0xC0, 0x00, 0x00, 0x00]);
    }

    #[test]
    fn wrong_le_resends_the_same_command_with_the_card_s_le() {
        // Case 2 (GET RESPONSE asked for too much): Le replaced.
        let (r, sent) = run(&DEBIT, &[&[0x61, 0x00], &[0x6C, 0x14], &[7, 0x90, 0]]);
        assert_eq!(r, Ok(vec![7, 0x90, 0]));
        assert_eq!(sent[2], vec![0x00, 0xC0, 0x00, 0x00, 0x14]);
        // Case 4 (DEBIT with its Le): the last byte replaced; case 3: Le appended.
        let (_, sent) = run(&DEBIT, &[&[0x6C, 0x14], &[0x90, 0]]);
        assert_eq!(sent[1][..21], DEBIT[..21]);
        assert_eq!(sent[1].len(), 22);
        assert_eq!(sent[1][21], 0x14);
        let (_, sent) = run(&DEBIT[..21], &[&[0x6C, 0x14], &[0x90, 0]]);
        assert_eq!(sent[1].len(), 22);
        assert_eq!(sent[1][21], 0x14);
        // 6Cxx then 61xx: both followed.
        let (r, _) = run(&DEBIT, &[&[0x6C, 0x02], &[0x61, 0x02], &[8, 9, 0x90, 0]]);
        assert_eq!(r, Ok(vec![8, 9, 0x90, 0]));
    }

    #[test]
    fn chaining_is_bounded_and_a_lost_exchange_is_a_failure() {
        let endless: Vec<&[u8]> = vec![&[0xAA, 0x61, 0x01]; MAX_EXCHANGES + 5];
        let (r, sent) = run(&DEBIT, &endless);
        assert_eq!(r.map_err(|f| f.code), Err(ErrorCode::CardError));
        assert_eq!(sent.len(), MAX_EXCHANGES);
        // The card leaves between 61xx and GET RESPONSE: a failed exchange, never 61xx.
        let (r, _) = run(&DEBIT, &[&[0x61, 0x14]]);
        assert_eq!(r.map_err(|f| f.code), Err(ErrorCode::CardRemoved));
        // 6Cxx for something that is not a short APDU.
        let (r, _) = run(&[0x80, 0x54, 0, 0, 5, 1], &[&[0x6C, 1]]);
        assert_eq!(r.map_err(|f| f.code), Err(ErrorCode::CardError));
    }
}
