//! Builds the service: database, verifier, the public and the admin listener.

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use actix_http::{HttpService, KeepAlive};
use actix_service::{fn_service, map_config, IntoServiceFactory, ServiceFactoryExt};
use actix_web::body::MessageBody;
use actix_web::dev::{
    AppConfig, Server, ServerHandle, ServiceFactory, ServiceRequest, ServiceResponse,
};
use actix_web::middleware::from_fn;
use actix_web::{web, App};
use anyhow::Context;
use tokio::task::JoinHandle;

use crate::alerts::{AlertCounters, Alerter, Mailer};
use crate::config::Settings;
use crate::console::{ConsoleSettings, MAX_FORM_BYTES};
use crate::http::auth::{self, ClientAddress, Gate, Limits};
use crate::http::body::{self, Wording};
use crate::http::connections::{self, AddressLimiter, ConnectionBounds};
use crate::http::error::AdminError;
use crate::http::{
    admin, callback, health, return_url, AppState, MAX_ADMIN_JSON_BYTES, MAX_CALLBACK_BYTES,
};
use crate::metrics::Metrics;
use crate::store::{spawn_pruner, spawn_rollup, Pruned, Store};

pub struct Application {
    port: u16,
    admin_port: u16,
    public: Server,
    admin: Server,
    state: AppState,
    limits: ConnectionLimits,
    drain_delay: std::time::Duration,
    outbox: Option<crate::notify::Outbox>,
    background: Background,
}

/// The service's periodic tasks (pruners, rollup, eraser, scanners), ended
/// when it stops or fails to start. Each holds a handle on the store, and so
/// keeps its pool's connections open: an instance that stopped must give them
/// back to the server, whose `max_connections` instances that come and go
/// (rolling deploys, embedding) share. A task ended between two passes loses
/// nothing: each pass is one transaction, and a blocking pass under way runs
/// to its end.
#[derive(Default)]
struct Background(Vec<JoinHandle<()>>);

impl Background {
    fn add(&mut self, task: impl Into<Option<JoinHandle<()>>>) {
        self.0.extend(task.into());
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// Stops a running application the way a SIGTERM does.
#[derive(Clone)]
pub struct StopHandle {
    accepting: Arc<AtomicBool>,
    public: ServerHandle,
    admin: ServerHandle,
    drain_delay: std::time::Duration,
}

impl StopHandle {
    /// Readiness turns 503 first and stays so for `PAYHOOK_DRAIN_DELAY`, while
    /// the listeners still answer, so a load balancer sees it and stops sending;
    /// then in-flight requests finish and the listeners close.
    pub async fn stop(&self) {
        self.accepting.store(false, Ordering::SeqCst);
        tokio::time::sleep(self.drain_delay).await;
        tokio::join!(self.public.stop(true), self.admin.stop(true));
    }
}

/// How `PAYHOOK_MAX_CONNECTIONS` is spread. actix counts connections per worker
/// (and stops accepting on a listener when every worker is full), so the
/// instance total is workers × per-worker, rounded down, for each listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    pub public_workers: usize,
    pub public_per_worker: usize,
    /// The admin listener keeps a share of its own, so a flood on the public
    /// listener never locks the operator out; one worker is plenty for it.
    pub admin: usize,
}

impl ConnectionLimits {
    pub fn split(total: usize, parallelism: usize) -> ConnectionLimits {
        let total = total.max(2);
        let admin = (total / 16).clamp(1, 64);
        let public = total - admin;
        let public_workers = parallelism.clamp(1, public);
        ConnectionLimits {
            public_workers,
            public_per_worker: public / public_workers,
            admin,
        }
    }

    /// The most connections the public listener holds at once.
    pub fn public_total(&self) -> usize {
        self.public_workers * self.public_per_worker
    }
}

/// What the public listener is built with.
struct PublicBounds {
    limits: ConnectionLimits,
    request_timeout: std::time::Duration,
    blocking_threads: usize,
    shutdown_timeout: u64,
    connection: ConnectionBounds,
    limiter: AddressLimiter,
}

/// The public listener: what `HttpServer::listen` builds, with each socket
/// counted against its address and wrapped (`http::connections`) before actix
/// reads from it.
fn public_server(
    data: web::Data<AppState>,
    listener: TcpListener,
    bounds: PublicBounds,
) -> std::io::Result<Server> {
    let PublicBounds {
        limits,
        request_timeout: timeout,
        blocking_threads,
        shutdown_timeout,
        connection,
        limiter,
    } = bounds;
    let local = listener.local_addr()?;
    let (max_age, max_requests) = (connection.max_age, connection.max_requests);
    tracing::info!(
        per_address = limiter.cap(),
        max_head_bytes = connection.max_head_bytes,
        max_age_s = max_age.as_secs(),
        max_requests,
        "public connection bounds"
    );
    let builder = actix_server::Server::build();
    let graceful = builder.graceful_shutdown_signal();
    Ok(builder
        .workers(limits.public_workers)
        // A public worker's blocking threads run `Store::bounded` work, and no
        // more of it proceeds at once than the pool has connections: extra
        // threads (tokio allows 512) would only wait, each holding a stack and
        // a malloc arena. Peak RSS paced with 64 connections: 31 -> 28.6 MiB.
        .worker_max_blocking_threads(blocking_threads)
        .max_concurrent_connections(limits.public_per_worker)
        .disable_signals()
        .shutdown_timeout(shutdown_timeout)
        .listen("payhook-public", listener, move || {
            let data = data.clone();
            let app = App::new()
                .wrap(from_fn(move |req, next| {
                    body::deadline(timeout, Wording::Text, req, next)
                }))
                .wrap(from_fn(move |req, next| {
                    connections::recycle(max_age, max_requests, req, next)
                }))
                .app_data(data)
                .app_data(web::PayloadConfig::new(MAX_CALLBACK_BYTES))
                .route("/paysera/callback", web::get().to(callback::receive))
                .route("/paysera/callback", web::post().to(callback::receive))
                .route(
                    "/paysera/checkout/webhook",
                    web::post().to(callback::receive_webhook),
                )
                .route(
                    "/gateways/{name}/callback",
                    web::get().to(callback::receive_gateway),
                )
                .route(
                    "/gateways/{name}/callback",
                    web::post().to(callback::receive_gateway),
                )
                .route(
                    "/paysera/return/{token}",
                    web::get().to(return_url::buyer_returned),
                )
                .route("/healthz", web::get().to(health::healthz))
                .route("/readyz", web::get().to(health::readyz));
            let graceful = graceful.clone();
            let http = HttpService::build()
                .keep_alive(KeepAlive::default())
                // The head; the body has its own deadline (`body::deadline`).
                .client_request_timeout(timeout)
                // What `HttpServer` sets: an answer's close lingers at most 1 s.
                .client_disconnect_timeout(std::time::Duration::from_secs(1))
                .local_addr(local)
                .graceful_shutdown_signal(move || {
                    let signal = graceful.clone();
                    async move { signal.notified().await }
                })
                .on_connect_ext(connections::on_connect)
                // Every public route reads at most `MAX_CALLBACK_BYTES`.
                .expect(body::expect(|_| MAX_CALLBACK_BYTES, Wording::Text))
                .finish(map_config(
                    app.into_factory()
                        .map_err(|e: actix_web::Error| e.error_response()),
                    |_| AppConfig::default(),
                ));
            let (limiter, connection) = (limiter.clone(), connection.clone());
            fn_service(move |io: actix_web::rt::net::TcpStream| {
                let (limiter, connection) = (limiter.clone(), connection.clone());
                async move { connections::admit(io, &limiter, &connection).await }
            })
            .and_then(http)
        })?
        .run())
}

/// The most an admin route reads: a console form, or the API's JSON.
fn admin_body_limit(path: &str) -> usize {
    if path.starts_with("/ui/") {
        MAX_FORM_BYTES
    } else {
        MAX_ADMIN_JSON_BYTES
    }
}

/// What `HttpServer::listen` builds for the admin listener (one worker, its
/// own connection cap), with an `Expect: 100-continue` hook: a body announced
/// over the route's limit is answered 413 before `100 Continue`.
fn admin_server<F, T, B>(
    app: F,
    listener: TcpListener,
    max_connections: usize,
    request_timeout: std::time::Duration,
    shutdown_timeout: u64,
) -> std::io::Result<Server>
where
    F: Fn() -> App<T> + Send + Clone + 'static,
    T: ServiceFactory<
            ServiceRequest,
            Config = (),
            Response = ServiceResponse<B>,
            Error = actix_web::Error,
            InitError = (),
        > + 'static,
    B: MessageBody + 'static,
{
    let local = listener.local_addr()?;
    let builder = actix_server::Server::build();
    let graceful = builder.graceful_shutdown_signal();
    Ok(builder
        .workers(1)
        .max_concurrent_connections(max_connections)
        .backlog(1024)
        .disable_signals()
        .shutdown_timeout(shutdown_timeout)
        .listen("payhook-admin", listener, move || {
            let graceful = graceful.clone();
            HttpService::build()
                .keep_alive(KeepAlive::default())
                .client_request_timeout(request_timeout)
                .client_disconnect_timeout(std::time::Duration::from_secs(1))
                .local_addr(local)
                .graceful_shutdown_signal(move || {
                    let signal = graceful.clone();
                    async move { signal.notified().await }
                })
                .expect(body::expect(admin_body_limit, Wording::Json))
                .finish(map_config(
                    app()
                        .into_factory()
                        .map_err(|e: actix_web::Error| e.error_response()),
                    |_| AppConfig::default(),
                ))
                .tcp()
        })?
        .run())
}

/// A JSON body over the admin limit is a 413 like one refused before it was
/// sent (`body::expect`); anything else the extractors refuse is a 400.
fn json_refused(e: actix_web::error::JsonPayloadError) -> actix_web::Error {
    use actix_web::error::JsonPayloadError;
    match e {
        JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
            AdminError::TooLarge(MAX_ADMIN_JSON_BYTES).into()
        }
        e => AdminError::BadRequest(format!("invalid JSON body: {e}")).into(),
    }
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let db = settings.database.connection.clone();
        let (pool_size, acquire) = (
            settings.database.pool_size,
            settings.database.acquire_timeout,
        );
        let statement = settings.database.statement_timeout;
        // Demo mode's token exists once `demo::provision` has run.
        let admin_token = settings
            .http
            .admin_token
            .clone()
            .context("PAYHOOK_ADMIN_TOKEN: none (demo mode's gateway was not provisioned)")?;
        let store = tokio::task::spawn_blocking(move || -> anyhow::Result<Store> {
            let store = Store::connect(&db, pool_size, acquire, statement)?;
            let applied = store.migrate()?;
            if applied > 0 {
                tracing::info!(applied, "database migrations applied");
            }
            Ok(store)
        })
        .await??;

        let gateway = &settings.gateway;
        let pipeline = settings.pipeline(store.clone())?;
        if gateway.policy.accept_legacy {
            tracing::warn!(
                "legacy (wp_) callbacks accepted (PAYHOOK_ACCEPT_LEGACY): each needs _ss2 and \
                 _ss1/_ss1v2, no repeated name, the gateway's field order"
            );
        }
        for key in pipeline.verifier().keys().keys() {
            tracing::info!(bits = key.bits(), sha256 = %key.fingerprint(), "gateway public key");
        }
        let metrics = Metrics::new();
        let counters: Arc<dyn AlertCounters> = Arc::new(metrics.clone());
        let alerter = match &settings.alerts.email {
            Some(email) => {
                tracing::info!(recipients = email.to.len(), "e-mail alerts on");
                Alerter::start(
                    Mailer::new(email)?,
                    settings.alerts.min_interval,
                    counters.clone(),
                    settings.http.admin_url.clone(),
                )
            }
            None => {
                tracing::info!("e-mail alerts off (no SMTP_URL)");
                Alerter::disabled(counters.clone())
            }
        };
        let mut background = Background::default();
        if settings.http.public_url.is_some() {
            background.add(crate::alerts::spawn_scanner(
                store.clone(),
                settings.alerts.missed_callback_after,
                settings.alerts.missed_callback_window,
                counters,
                alerter.clone(),
            ));
        }
        let db = &settings.database;
        for (what, retention) in [
            (Pruned::Rejected, db.rejected_retention),
            (Pruned::Duplicates, db.duplicate_retention),
            (Pruned::Captured, db.captured_retention),
        ] {
            background.add(spawn_pruner(store.clone(), what, retention));
        }
        background.add(spawn_rollup(store.clone()));
        background.add(crate::pipeline::erase::spawn_eraser(
            pipeline.clone(),
            db.pii_retention,
        ));
        background.add(metrics.watch_replication(store.clone()));
        metrics.gateways(pipeline.gateway_names());
        let http = &settings.http;
        let mut state = AppState {
            pipeline,
            self_check: None,
            shop: match settings.notify.delivery() {
                Some(d) => Some(Arc::new(crate::notify::ShopClient::new(
                    d.url, d.secrets, d.timeout,
                )?)),
                None => None,
            },
            checkout_projects: Arc::new(
                gateway
                    .checkout
                    .iter()
                    .map(|p| p.client_id.clone())
                    .collect(),
            ),
            store,
            sms_reply: http.sms_reply.clone(),
            admin_token,
            projects: Arc::new(settings.gateway.projects.clone()),
            accepting: Arc::new(AtomicBool::new(true)),
            metrics,
            alerter,
            log_pii: settings.logging.pii,
            clients: ClientAddress::new(http.trusted_proxies.clone(), http.client_ip_header),
            public_url: http.public_url.clone(),
        };
        let outbox = match settings.notify.delivery() {
            Some(delivery) => {
                tracing::info!(notify = %settings.notify.summary(), "shop notifications on");
                Some(crate::notify::start(
                    delivery,
                    state.store.clone(),
                    state.metrics.notify.clone(),
                    state.alerter.clone(),
                    state.accepting.clone(),
                )?)
            }
            None => {
                tracing::info!(
                    "shop notifications off (no SHOP_NOTIFY_URL): events stay in the outbox, \
                     readable at GET /api/v1/events"
                );
                None
            }
        };

        let public_listener = TcpListener::bind(http.bind)?;
        let admin_listener = TcpListener::bind(http.admin_bind)?;
        let port = public_listener.local_addr()?.port();
        // The self-check probes the listener's real address (port 0 in tests).
        let mut checked = settings.clone();
        checked.http.bind = public_listener.local_addr()?;
        state.self_check = Some(crate::check::for_console(checked));
        let admin_port = admin_listener.local_addr()?.port();
        let shutdown = http.shutdown_timeout.as_secs().max(1);
        let limits = ConnectionLimits::split(
            http.max_connections as usize,
            std::thread::available_parallelism().map_or(1, |n| n.get()),
        );
        let timeout = http.request_timeout;
        tracing::info!(
            public = limits.public_total(),
            public_workers = limits.public_workers,
            admin = limits.admin,
            request_timeout_ms = timeout.as_millis() as u64,
            "connection limits"
        );

        let data = web::Data::new(state.clone());
        let public = public_server(
            data.clone(),
            public_listener,
            PublicBounds {
                limits,
                request_timeout: timeout,
                blocking_threads: pool_size.max(2) as usize,
                shutdown_timeout: shutdown,
                connection: ConnectionBounds {
                    max_head_bytes: http.max_head_bytes,
                    max_body_bytes: MAX_CALLBACK_BYTES,
                    max_age: http.connection_max_age,
                    max_requests: http.connection_max_requests,
                },
                limiter: AddressLimiter::new(
                    http.max_connections_per_address,
                    http.trusted_proxies.clone(),
                ),
            },
        )?;

        let admin_data = data.clone();
        let console_settings = web::Data::new(ConsoleSettings {
            session_ttl: http.ui_session_ttl,
            secure_cookie: http.ui_secure_cookie,
            token_fingerprint: auth::token_fingerprint(&state.admin_token),
            missed_after: settings.alerts.missed_callback_after,
            missed_window: settings.alerts.missed_callback_window,
        });
        // One door for the listener's workers, the API and the console alike
        // (per instance: see `http::auth`).
        let gate = web::Data::new(Gate::new(state.clients.clone(), Limits::ADMIN));
        let admin_app = move || {
            App::new()
                .wrap(from_fn(move |req, next| {
                    body::deadline(timeout, Wording::Json, req, next)
                }))
                // Outermost: the deadline's 408 gets the API's headers too.
                .wrap(from_fn(admin::api_headers))
                .app_data(admin_data.clone())
                .app_data(console_settings.clone())
                .app_data(gate.clone())
                .configure(crate::console::routes)
                .app_data(
                    web::JsonConfig::default()
                        .limit(MAX_ADMIN_JSON_BYTES)
                        .error_handler(|e, _| json_refused(e)),
                )
                .app_data(web::QueryConfig::default().error_handler(|e, _| {
                    AdminError::BadRequest(format!("invalid query: {e}")).into()
                }))
                .app_data(web::PathConfig::default().error_handler(|e, _| {
                    AdminError::BadRequest(format!("invalid path: {e}")).into()
                }))
                .route("/metrics", web::get().to(health::metrics))
                .service(
                    web::scope("/api/v1")
                        .route("/payments", web::post().to(admin::create_payment))
                        .route("/orders/{orderid}", web::put().to(admin::put_order))
                        .route("/orders/{orderid}", web::get().to(admin::get_order))
                        .route(
                            "/orders/{orderid}/close",
                            web::post().to(admin::close_order),
                        )
                        .route(
                            "/orders/{orderid}/erase",
                            web::post().to(admin::erase_order),
                        )
                        .route(
                            "/orders/{orderid}/confirm",
                            web::post().to(admin::confirm_order),
                        )
                        .route("/callbacks", web::get().to(admin::list_callbacks))
                        .route(
                            "/callbacks/{id}/replay",
                            web::post().to(admin::replay_callback),
                        )
                        .route("/sessions/revoke", web::post().to(admin::revoke_sessions))
                        .route(
                            "/openapi.json",
                            web::get().to(crate::http::openapi::document),
                        )
                        .configure(crate::http::events::routes)
                        .default_service(web::to(admin::not_found)),
                )
        };
        let admin = admin_server(admin_app, admin_listener, limits.admin, timeout, shutdown)?;

        Ok(Application {
            port,
            admin_port,
            public,
            admin,
            state,
            limits,
            drain_delay: settings.http.drain_delay,
            outbox,
            background,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn admin_port(&self) -> u16 {
        self.admin_port
    }

    pub fn connection_limits(&self) -> ConnectionLimits {
        self.limits
    }

    /// The delivery worker, when shop notifications are on: a pass on
    /// demand (`settings.notify.on_timer` off leaves it the only way).
    pub fn outbox(&self) -> Option<crate::notify::Outbox> {
        self.outbox.clone()
    }

    pub fn stop_handle(&self) -> StopHandle {
        StopHandle {
            accepting: self.state.accepting.clone(),
            public: self.public.handle(),
            admin: self.admin.handle(),
            drain_delay: self.drain_delay,
        }
    }

    /// Serves until both listeners stop; SIGTERM or Ctrl-C starts a graceful stop.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let stop = self.stop_handle();
        tokio::spawn(async move {
            shutdown_signal().await;
            tracing::info!("shutdown requested: readiness off, finishing in-flight callbacks");
            stop.stop().await;
        });
        let (a, b) = tokio::join!(self.public, self.admin);
        drop(self.background);
        a.and(b)
    }
}

/// The admin API's OpenAPI document (`payhook openapi`): the contract of the
/// admin listener this module builds.
pub fn openapi_document() -> String {
    crate::http::openapi::document_json()
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
