//! `tocsin serve` and `tocsin migrate`.

use std::sync::Arc;

use anyhow::Context;
use tocsin_core::auth::Role;
use tocsin_core::model::EmailAddress;
use tocsin_core::time::{to_millis, Clock, SystemClock};
use tocsin_server::{AppState, Limits};
use tocsin_store::{redact, NewUser, Store, StoreOptions};

use crate::config::{Config, LogFormat};

/// Sets up logging once.
pub fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    match config.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

/// Opens and migrates the configured database.
pub async fn open_store(config: &Config, clock: &dyn Clock) -> anyhow::Result<Store> {
    open_store_with(config, clock, tocsin_store::DEFAULT_LEASE).await
}

async fn open_store_with(
    config: &Config,
    clock: &dyn Clock,
    delivery_lease: std::time::Duration,
) -> anyhow::Result<Store> {
    if config.is_sqlite() {
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!("cannot create data directory {}", config.data_dir.display())
        })?;
    }
    let opts = StoreOptions {
        sqlite_sync: config.sqlite_synchronous,
        delivery_lease,
        ..Default::default()
    };
    let store = Store::connect(&config.database, &opts)
        .await
        .with_context(|| format!("cannot open database {}", redact(&config.database)))?;
    let applied = store
        .migrate(to_millis(clock.now()))
        .await
        .context("migration failed")?;
    if !applied.is_empty() {
        tracing::info!(?applied, "database migrated");
    }
    Ok(store)
}

/// `tocsin migrate`: applies migrations and exits.
pub async fn migrate(config: Config) -> anyhow::Result<()> {
    let store = open_store(&config, &SystemClock).await?;
    println!("schema at version {}", store.schema_version().await?);
    store.close().await;
    Ok(())
}

/// `tocsin admin-token`: break-glass access. Opens the database directly (which
/// needs the same rights as the server itself), ensures an active admin exists and
/// prints a new admin token for them.
pub async fn admin_token(config: Config) -> anyhow::Result<()> {
    let clock = SystemClock;
    let store = open_store(&config, &clock).await?;
    bootstrap(&store, &config, &clock).await?;
    let admin = store
        .users()
        .await?
        .into_iter()
        .find(|u| u.active && u.role == Role::Admin)
        .context(
            "no active admin user: reactivate one in the database, or start with an empty database",
        )?;
    let actor = tocsin_store::Actor::system();
    let token = store
        .create_token(
            admin.id,
            "admin-token (break-glass)",
            Some(Role::Admin),
            &actor,
            clock.now(),
        )
        .await?;
    println!(
        "New admin token for {} (token {}):\n\n    TOCSIN_TOKEN={}\n",
        admin.email, token.record.id, token.secret
    );
    store.close().await;
    Ok(())
}

/// `tocsin serve`: runs until SIGTERM or SIGINT, then drains in-flight requests.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let notify = config.notify.build(config.public_url.as_deref())?;
    let store = open_store_with(&config, clock.as_ref(), notify.lease).await?;
    bootstrap(&store, &config, clock.as_ref()).await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let ingest_rate = tocsin_server::ingest::limit::RateLimit {
        per_second: config.ingest_rate_per_key,
        burst: config.ingest_burst_per_key,
    };
    let limits = Limits {
        max_body_bytes: config.max_body_bytes,
        max_attachment_bytes: config.max_attachment_bytes,
        ingest_rate,
    };
    let mut state = AppState::new(store.clone(), config.incident.clone(), clock, limits);
    state.public_url = Some(
        config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{addr}")),
    );
    // Twilio reaches replies only at a public URL someone configured.
    if let (Some(token), Some(url)) = (&notify.twilio_auth_token, &config.public_url) {
        state = state.with_twilio(tocsin_server::TwilioInbound::new(
            token.clone(),
            url.clone(),
        ));
    }
    // Status-page subscribers: email through the same relay as pages, webhooks
    // signed per subscriber. Without a relay the public pages offer no email.
    let status_mailer = tocsin_engine::status_mail::StatusMailer::new(
        store.clone(),
        state.clock.clone(),
        notify.smtp.clone(),
        config
            .status
            .mail(state.public_url.as_deref().unwrap_or_default()),
    )
    .map_err(|e| anyhow::anyhow!("status.{}: {}", e.field, e.message))?;
    state.status_email = status_mailer.email_available();
    // Workflows: the secret key, what definitions are checked against, and
    // where run context links point.
    let (workflow_config, workflow_setup) = config.workflows.build()?;
    if let Some(key) = config
        .workflows
        .secret_key(&config.data_dir, config.is_sqlite())?
    {
        store.set_secret_key(key);
    }
    store.set_public_url(state.public_url.as_deref().unwrap_or_default());
    state.workflows = Arc::new(workflow_setup);
    let notify_providers = notify.providers.by_channel();
    // Build the similar-incident index now rather than on the first search;
    // searches made before it is built wait for it.
    {
        let (similar, store) = (state.similar.clone(), store.clone());
        tokio::spawn(async move {
            if let Err(e) = similar.refresh(&store).await {
                tracing::warn!(error = %e, "building the similar-incident index failed; the next search retries");
            }
        });
    }
    // Background work stops when the HTTP server does.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let heartbeats = tokio::spawn(tocsin_engine::heartbeat::run(
        store.clone(),
        state.settings.clone(),
        state.clock.clone(),
        state.heartbeat_wake.clone(),
        stopped.clone(),
    ));
    let held = tokio::spawn(tocsin_engine::suppression::run(
        store.clone(),
        state.settings.clone(),
        state.clock.clone(),
        stopped.clone(),
    ));
    let channels: Vec<_> = notify
        .providers
        .channels()
        .iter()
        .map(|c| c.as_str())
        .collect();
    tracing::info!(?channels, "notification channels");
    // The reply invitation in texts is the Twilio provider's (notify_config.rs).
    let renderer =
        tocsin_engine::render::Renderer::new(state.public_url.clone().unwrap_or_default())
            .with_templates(notify.templates.clone());
    let sender = tocsin_engine::sender::Sender::new(
        store.clone(),
        state.clock.clone(),
        notify.providers,
        renderer,
        notify.sender,
    );
    // Before the job runner hands anything: see release_interrupted.
    sender
        .release_interrupted()
        .await
        .context("cannot release notifications left mid-send")?;
    let delivery = tokio::spawn(sender.clone().run(stopped.clone()));
    let status_mail = tokio::spawn(status_mailer.run(stopped.clone()));
    let executors = tocsin_engine::workflow::standard_executors(
        &workflow_config,
        tocsin_engine::workflow::ExecutorDeps {
            settings: state.settings.clone(),
            delivery: Arc::new(sender.clone()),
            providers: notify_providers,
        },
    );
    let workflows = tokio::spawn(
        tocsin_engine::workflow::WorkflowEngine::new(
            store.clone(),
            state.clock.clone(),
            tocsin_engine::workflow::Executors::new(executors),
            workflow_config.concurrency,
        )
        .run(stopped.clone()),
    );
    let jobs = tokio::spawn(
        tocsin_engine::jobs::Runner::new(store.clone(), state.clock.clone(), Arc::new(sender))
            .run(stopped.clone()),
    );
    // Public status pages: rendered ahead of readers, and written out as static
    // files when an export folder is configured.
    let status_cache = tokio::spawn(tocsin_server::status::run_refresher(
        state.clone(),
        stopped.clone(),
    ));
    let status_export = config.status_export_dir.clone().map(|dir| {
        tracing::info!(dir = %dir.display(), "exporting public status pages");
        tokio::spawn(tocsin_server::status::run_exporter(
            store.clone(),
            state.clock.clone(),
            state.public_url.clone().unwrap_or_default(),
            state.status_email,
            dir,
            config.status_export_interval,
            stopped.clone(),
        ))
    });
    let smtp = match config.smtp_listen {
        None => None,
        Some(smtp_addr) => {
            let listener = tokio::net::TcpListener::bind(smtp_addr)
                .await
                .with_context(|| format!("cannot listen for SMTP on {smtp_addr}"))?;
            let opts = tocsin_server::smtp::SmtpOptions {
                max_message_bytes: config.smtp_max_message_bytes,
                max_connections: config.smtp_max_connections,
                email: tocsin_ingest::email::EmailOptions {
                    resolve_keywords: config.email_resolve_keywords.clone(),
                },
                ..Default::default()
            };
            tracing::info!(addr = %listener.local_addr()?, "SMTP listening");
            eprintln!("tocsin SMTP listening on {}", listener.local_addr()?);
            Some(tokio::spawn(tocsin_server::smtp::serve(
                listener,
                state.clone(),
                opts,
                stopped.clone(),
            )))
        }
    };
    tracing::info!(%addr, database = %redact(&config.database), "tocsin listening");
    eprintln!("tocsin listening on http://{addr}");
    let shutdown = async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    };
    tocsin_server::serve(listener, state, shutdown).await?;
    let _ = heartbeats.await;
    let _ = held.await;
    let _ = jobs.await;
    let _ = workflows.await;
    let _ = delivery.await;
    let _ = status_mail.await;
    let _ = status_cache.await;
    if let Some(export) = status_export {
        let _ = export.await;
    }
    if let Some(smtp) = smtp {
        let _ = smtp.await;
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

async fn bootstrap(store: &Store, config: &Config, clock: &dyn Clock) -> anyhow::Result<()> {
    let email = EmailAddress::parse("admin_email", &config.admin_email)
        .map_err(|e| anyhow::anyhow!("admin_email: {}", e.message))?;
    let admin = NewUser {
        name: "Administrator".into(),
        email,
        role: Role::Admin,
        time_zone: "UTC".into(),
        password_hash: None,
    };
    if store.user_count().await? > 0 {
        return Ok(());
    }
    // The first sign-in password is random, shown once like the token; change it
    // on the profile page.
    let password = tocsin_store::random_token(20);
    let admin = NewUser {
        password_hash: Some(
            tocsin_server::password::hash("password", &password)
                .map_err(|e| anyhow::anyhow!("password: {}", e.message))?,
        ),
        ..admin
    };
    if let Some((user, token)) = store.bootstrap(&admin, clock.now()).await? {
        eprintln!(
            "\nCreated the first admin user ({}) and an API token for it.\n\
             They are shown only this once; keep them somewhere safe:\n\n    TOCSIN_TOKEN={}\n\n\
             Sign in to the web UI as {} with the password\n\n    {}\n",
            user.email, token.secret, user.email, password
        );
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
