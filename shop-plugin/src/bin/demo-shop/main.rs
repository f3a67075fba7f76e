//! `demo-shop`: a tiny "existing shop" beside the shop plugin, as a real shop would use it.
//! It serves a product page that includes the plugin's checkout.js, creates each payment
//! server-side through the merchant API (API key, Idempotency-Key), takes the plugin's
//! signed webhooks (verified with `shop_plugin::webhooks::verify`), and calls an order
//! paid only when a webhook says so.
//!
//! Routes: `GET /` (the product page), `POST /orders {product}` (→ the payment's id,
//! client secret and the plugin's URL for checkout.js), `GET /orders/{id}`,
//! `POST /orders/{id}/cancel`, `POST /webhook`, and `GET /events?after=&order=&timeout_ms=`:
//! a long-poll of order changes for pages and tests (they wait on it, never poll).

mod orders;
mod plugin;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use hyper::body::Incoming;
use hyper::{Method, Request};
use serde_json::{json, Value};
use shop_plugin::engine::ApiError;
use shop_plugin::http::{error_response, json_response, read_json, Resp};
use shop_plugin::webhooks::sign::{DEFAULT_TOLERANCE_SECS, SIGNATURE_HEADER};
use shop_plugin::webhooks::{verify, WebhookSecret};
use zeroize::Zeroizing;

use orders::{Orders, Product};
use plugin::{PluginClient, Reply};

#[derive(Parser)]
#[command(
    version,
    about = "A tiny demo shop that takes purse payments through the shop plugin"
)]
struct Cli {
    /// Where the shop listens (port 0: any free port; the bound address is logged).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The plugin's URL as this server reaches it (merchant API).
    #[arg(long)]
    plugin: String,
    /// The plugin's URL as shoppers' browsers reach it (checkout.js, shopper API).
    /// Default: --plugin.
    #[arg(long)]
    plugin_public: Option<String>,
    /// This shop's URL as the plugin reaches it (for the webhook's notify URL).
    /// Default: http://<the bound address>.
    #[arg(long)]
    public_url: Option<String>,
    /// A file holding the merchant API key (mode 0600).
    #[arg(long)]
    api_key_file: PathBuf,
    /// The file holding the webhook signing secret, the plugin's own (mode 0600).
    #[arg(long)]
    webhook_secret_file: PathBuf,
    /// The currency of the catalogue (the plugin's SAM must take it).
    #[arg(long, default_value = "EUR")]
    currency: String,
    /// The period of the time-cycle product, in seconds.
    #[arg(long, default_value_t = 60)]
    period_secs: u32,
}

struct Shop {
    plugin: PluginClient,
    plugin_public: String,
    notify_url: String,
    secret: WebhookSecret,
    currency: String,
    products: Vec<Product>,
    orders: Orders,
    next_order: AtomicU64,
    /// Tells order ids of this run apart from earlier runs (they are Idempotency-Keys).
    run: String,
}

fn err(status: u16, code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(status, code, message)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// `&`, `<`, `>`, `"` escaped for HTML text and attributes.
fn html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn query_param<'a>(q: &'a str, name: &str) -> Option<&'a str> {
    q.split('&')
        .find_map(|kv| kv.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
}

impl Shop {
    fn render_page(&self) -> String {
        let products: String = self
            .products
            .iter()
            .map(|p| {
                let price = format!("{}.{:02} {}", p.amount / 100, p.amount % 100, self.currency);
                let price = match p.time_cycle {
                    None => price,
                    Some((period, max)) => format!("{price} per {period} s, at most {max} periods"),
                };
                format!(
                    "<div class=\"product\"><span>{} <small>{}</small></span><button data-product=\"{}\">Buy</button></div>\n",
                    html(p.name),
                    html(&price),
                    html(p.id)
                )
            })
            .collect();
        include_str!("../../../demo/index.html")
            .replace("{{PLUGIN_URL}}", &html(&self.plugin_public))
            .replace("{{PRODUCTS}}", &products)
    }

    /// `POST /orders {product}`: the shop's own order, and a payment for it at the plugin.
    async fn create_order(&self, body: &Value) -> Result<Resp, ApiError> {
        let product = body["product"].as_str().unwrap_or("");
        let Some(p) = self.products.iter().find(|p| p.id == product) else {
            return Err(err(
                400,
                "unknown_product",
                format!("no product '{product}'"),
            ));
        };
        let id = format!(
            "ord-{}-{}",
            self.run,
            self.next_order.fetch_add(1, Ordering::Relaxed) + 1
        );
        let request = p.payment_request(&self.currency, &id, &self.notify_url);
        let reply = self
            .plugin
            .create_payment(&id, &request)
            .await
            .map_err(|e| err(502, "payment_service_unavailable", e.to_string()))?;
        let payment = match reply {
            Reply::Http(201, v) => v,
            Reply::Http(s, v) => {
                return Err(err(
                    502,
                    "payment_service_error",
                    format!("the payment service answered {s}"),
                )
                .with(json!({"plugin": v["error"]})))
            }
            Reply::Unreachable(e) => return Err(err(502, "payment_service_unavailable", e)),
        };
        let mut order = self.orders.add(&id, p.id, &payment);
        // Only the shopper's browser gets these: the client secret authorises paying.
        order["client_secret"] = payment["client_secret"].clone();
        order["api_base"] = json!(self.plugin_public);
        tracing::info!("order {id}: payment {} created", payment["id"]);
        Ok(json_response(201, &order))
    }

    async fn cancel_order(&self, id: &str) -> Result<Resp, ApiError> {
        let payment = self
            .orders
            .payment_id(id)
            .ok_or_else(|| ApiError::not_found("order"))?;
        match self.plugin.cancel(&payment).await {
            // The webhook brings the canceled status; 409: a card paid it already.
            Reply::Http(200 | 409, v) => Ok(json_response(
                200,
                &json!({"order": self.orders.get(id), "plugin": v}),
            )),
            Reply::Http(s, _) => Err(err(
                502,
                "payment_service_error",
                format!("the payment service answered {s}"),
            )),
            Reply::Unreachable(e) => Err(err(502, "payment_service_unavailable", e)),
        }
    }

    /// `POST /webhook`: verify the signature over the raw body, then apply the event.
    fn webhook(
        &self,
        parts: &hyper::http::request::Parts,
        raw: &[u8],
        event: &Value,
    ) -> Result<Resp, ApiError> {
        let header = parts
            .headers
            .get(SIGNATURE_HEADER)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                err(
                    400,
                    "signature_missing",
                    "the Purse-Signature header is required",
                )
            })?;
        verify(
            self.secret.as_bytes(),
            header,
            raw,
            now(),
            DEFAULT_TOLERANCE_SECS,
        )
        .map_err(|e| err(400, "signature_invalid", e.to_string()))?;
        if !self.orders.apply_event(event) {
            // Not ours (or from before a restart of this demo): acknowledge, so the
            // plugin does not retry it for days.
            tracing::warn!("webhook {} for an unknown order", event["id"]);
        }
        Ok(json_response(200, &json!({"received": true})))
    }

    async fn route(self: Arc<Self>, req: Request<Incoming>) -> Resp {
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let query = req.uri().query().unwrap_or("").to_string();
        let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let r = match (&method, segs.as_slice()) {
            (&Method::GET, []) => {
                let mut r = json_response(200, &Value::Null);
                *r.body_mut() = http_body_util::Full::new(bytes::Bytes::from(self.render_page()));
                r.headers_mut().insert(
                    hyper::header::CONTENT_TYPE,
                    hyper::header::HeaderValue::from_static("text/html; charset=utf-8"),
                );
                Ok(r)
            }
            (&Method::POST, ["orders"]) => match read_json(req).await {
                Ok((_, _, body)) => self.create_order(&body).await,
                Err(e) => Err(e),
            },
            (&Method::GET, ["orders", id]) => self
                .orders
                .get(id)
                .map(|o| json_response(200, &o))
                .ok_or_else(|| ApiError::not_found("order")),
            (&Method::POST, ["orders", id, "cancel"]) => self.cancel_order(id).await,
            (&Method::POST, ["webhook"]) => match read_json(req).await {
                Ok((parts, raw, event)) => self.webhook(&parts, &raw, &event),
                Err(e) => Err(e),
            },
            (&Method::GET, ["events"]) => {
                let num = |n: &str| query_param(&query, n).and_then(|v| v.parse::<u64>().ok());
                let wait = Duration::from_millis(num("timeout_ms").unwrap_or(25_000).min(60_000));
                let order = query_param(&query, "order");
                Ok(json_response(
                    200,
                    &self
                        .orders
                        .events(num("after").unwrap_or(0), order, wait)
                        .await,
                ))
            }
            _ => Err(ApiError::not_found("route")),
        };
        r.unwrap_or_else(|e| error_response(&e))
    }
}

fn main() -> Result<()> {
    shop_plugin::init_logging();
    let cli = Cli::parse();
    let api_key = Zeroizing::new(
        shop_plugin::files::read_private(&cli.api_key_file)
            .context("the merchant API key file")?
            .trim()
            .to_string(),
    );
    let secret = WebhookSecret::load(&cli.webhook_secret_file)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(cli.listen)
            .await
            .with_context(|| format!("binding {}", cli.listen))?;
        let addr = listener.local_addr()?;
        let public = cli.public_url.unwrap_or_else(|| format!("http://{addr}"));
        let shop = Arc::new(Shop {
            plugin: PluginClient::new(&cli.plugin, api_key)?,
            plugin_public: cli
                .plugin_public
                .unwrap_or_else(|| cli.plugin.clone())
                .trim_end_matches('/')
                .to_string(),
            notify_url: format!("{}/webhook", public.trim_end_matches('/')),
            secret,
            currency: cli.currency,
            products: orders::catalogue(cli.period_secs),
            orders: Orders::new(),
            next_order: AtomicU64::new(0),
            run: format!("{:x}{:04x}", now(), rand::random::<u16>()),
        });
        tracing::info!(
            "demo-shop listening on {addr} (plugin {})",
            shop.plugin_public
        );
        shop_plugin::http::serve_with(listener, move |req| shop.clone().route(req)).await?;
        Ok(())
    })
}
