//! The `muninn` command line: run the hub, manage users, migrate, print the config.

use std::net::TcpListener;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};
use diesel::Connection;

use muninn::config::{Config, DEFAULT_CONFIG, Overrides};

mod cli;
use cli::{HubArgs, call_hub, hub_token};
use muninn::ops::systemd::{self, UnitOptions};
use muninn::store::{self, api_tokens, users};

/// glibc's malloc consolidates its fast bins whenever a block of 1 KiB or more is
/// requested, and every web request allocates its handler's future, a block that size:
/// that walk was 3 % of the HTTP workers' time under load. mimalloc has no such step.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "muninn",
    version,
    about = "A self-hosted automation hub: webhooks in, durable events, agents, signed webhooks and feeds out.",
    long_about = "A self-hosted automation hub: webhooks in, durable events, agents, signed webhooks and feeds out.\n\n\
        Settings come from defaults, then a TOML file (--config), then MUNINN_* environment variables, then flags.\n\
        `muninn config` prints every setting with its default and what it does."
)]
struct Cli {
    /// TOML configuration file.
    #[arg(long, env = "MUNINN_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Folder for the database and admin.token [default: ./muninn-data]
    #[arg(long, env = "MUNINN_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// SQLite database path or sqlite:// URL [default: <data dir>/muninn.db], or a
    /// postgres:// URL (one node per database so far)
    #[arg(long, env = "MUNINN_DATABASE_URL", global = true)]
    database_url: Option<String>,
    /// Log format: text or json [default: text]
    #[arg(long, env = "MUNINN_LOG_FORMAT", global = true)]
    log_format: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the hub: HTTP server, agents and delivery, until SIGTERM or Ctrl-C.
    ///
    /// On an empty database it creates an admin user and writes its API token to
    /// <data dir>/admin.token (or uses MUNINN_ADMIN_TOKEN).
    Serve {
        /// Address to listen on [default: 127.0.0.1:3000]
        #[arg(long, env = "MUNINN_BIND")]
        bind: Option<String>,
        /// SQLite durability: full (every 2xx survives power loss) or normal [default: full]
        #[arg(long, env = "MUNINN_SYNCHRONOUS")]
        synchronous: Option<String>,
        /// Safe mode: serve the API and keep the database, but start no agents,
        /// subscriptions or incoming webhooks, so one that breaks the hub can be fixed or
        /// deleted through the API.
        #[arg(long)]
        safe: bool,
        /// Start with a new, empty database even though the data directory's marker says
        /// one was created there (its files were deleted or lost).
        #[arg(long)]
        init: bool,
    },
    /// Add or list users (works while the hub is running).
    User {
        #[command(subcommand)]
        action: UserCommand,
    },
    /// List, create or revoke API tokens (works while the hub is running).
    Token {
        #[command(subcommand)]
        action: TokenCommand,
    },
    /// List your credentials (names and modes, never values) on the running hub.
    Credentials {
        #[command(subcommand)]
        action: CredentialsCommand,
    },
    /// Apply pending database migrations and exit (`serve` also does this at start).
    Migrate,
    /// Copy a stopped hub's whole database into another one: SQLite to PostgreSQL or
    /// back, every table, ids kept. Refuses a target that holds data (unless --replace)
    /// and a database a hub is running on.
    ///
    /// Example: muninn copy-db --from muninn-data/muninn.db --to postgres://muninn@db/muninn
    CopyDb(cli::copy_db::CopyDbArgs),
    /// Import a Huginn scenario file into the running hub (creates or updates by guid).
    Import {
        /// The scenario JSON file (Huginn's export format, schema_version 1).
        file: PathBuf,
        #[command(flatten)]
        hub: HubArgs,
    },
    /// Print a scenario of the running hub in Huginn's export format.
    Export {
        scenario_id: i64,
        #[command(flatten)]
        hub: HubArgs,
    },
    /// Talk to the running hub's management API: agents, subscriptions, deliveries,
    /// events, scenarios, tokens. Prints the API's JSON; exits non-zero on an error
    /// answer, with the API's message on stderr.
    ///
    /// Example: muninn api agents list --pretty
    Api(cli::ApiArgs),
    /// Print the default configuration file, every key documented.
    Config,
    /// Manage the key that encrypts secrets at rest (<data dir>/secret.key or
    /// MUNINN_SECRET_KEY).
    Secrets {
        #[command(subcommand)]
        action: SecretsCommand,
    },
    /// Print a systemd unit (Type=notify, watchdog, hardening) for running the hub as a
    /// service. The global --data-dir and --config go into it.
    ///
    /// Example: muninn systemd-unit --user muninn --data-dir /var/lib/muninn
    ///   > /etc/systemd/system/muninn.service
    SystemdUnit {
        /// System user the service runs as [default: muninn]
        #[arg(long, default_value = "muninn")]
        user: String,
        /// Path of the muninn binary [default: this binary's path]
        #[arg(long)]
        bin: Option<PathBuf>,
        /// Seconds without a WATCHDOG=1 after which systemd restarts the hub.
        #[arg(long, default_value_t = 30)]
        watchdog_sec: u64,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user and print its API token (shown only this once).
    Add {
        name: String,
        /// Make the user an admin (sees and manages every user's objects).
        #[arg(long)]
        admin: bool,
    },
    /// List users.
    List,
}

#[derive(Subcommand)]
enum CredentialsCommand {
    /// Names, modes and update times of the token's user's credentials (never values).
    List {
        #[command(flatten)]
        hub: HubArgs,
    },
}

#[derive(Subcommand)]
enum SecretsCommand {
    /// Re-encrypt every stored secret with a new key, then forget the old key.
    ///
    /// Run it with the hub stopped (it refuses while a hub runs on the data directory).
    /// With the key file, the new key is made here. With MUNINN_SECRET_KEY, give the new
    /// key first: MUNINN_SECRET_KEY=<new>,<old>; afterwards set it to <new> alone.
    RotateKey,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// List tokens (never their secrets): id, user, name, scope, created, last used.
    List {
        /// Only this user's tokens (by name).
        #[arg(long)]
        user: Option<String>,
    },
    /// Create a token for a user and print it (shown only this once).
    Create {
        /// The user (by name) the token acts for.
        #[arg(long)]
        user: String,
        /// A name to tell the token by, e.g. "console" or "ci".
        #[arg(long)]
        name: String,
        /// admin (all the user may do), full (all but admin-only work) or read (GET only).
        #[arg(long, default_value = "full")]
        scope: String,
    },
    /// Revoke a token by id; it stops working at once.
    Revoke { id: i64 },
    /// Give a token a new secret (same id, name and scope) and print it; the old
    /// secret stops working at once.
    Rotate { id: i64 },
}

fn load_config(cli: &Cli, bind: Option<String>, synchronous: Option<String>) -> Result<Config> {
    Ok(Config::load(
        cli.config.as_deref(),
        Overrides {
            bind,
            data_dir: cli.data_dir.clone(),
            database_url: cli.database_url.clone(),
            synchronous,
            log_format: cli.log_format.clone(),
            admin_token: std::env::var("MUNINN_ADMIN_TOKEN").ok(),
        },
    )?)
}

fn open_db(config: &Config) -> Result<store::Conn> {
    // A lost database is not silently replaced by an empty one here either.
    if config.postgres_url().is_none() {
        store::files::check_marker(&config.storage.data_dir, &config.database_path(), false)?;
    }
    let mut conn = store::establish(&config.store_options())?;
    store::migrate(&mut conn)?;
    Ok(conn)
}

// One idea: the process's entry: the two sandbox workers' hidden entry points, then one arm per
// subcommand, each a few lines that call into the library.
fn main() -> Result<()> {
    // The jq sandbox's worker process (src/agents/jq/sandbox.rs): hidden, before any
    // setting is read, so nothing of the hub's configuration reaches it.
    if std::env::args().nth(1).as_deref() == Some(muninn::agents::jq::sandbox::WORKER_ARG) {
        let args: Vec<String> = std::env::args().skip(2).collect();
        std::process::exit(muninn::agents::jq::sandbox::worker_main(&args));
    }
    // The shell_command worker (src/agents/shell_command/runner.rs): limits itself and
    // becomes the command; the parent already cleared its environment.
    if std::env::args().nth(1).as_deref() == Some(muninn::agents::shell_command::runner::WORKER_ARG)
    {
        let args: Vec<String> = std::env::args().skip(2).collect();
        std::process::exit(muninn::agents::shell_command::runner::worker_main(&args));
    }
    let cli = Cli::parse();
    match &cli.command {
        Command::Serve {
            bind,
            synchronous,
            safe,
            init,
        } => {
            let mut config = load_config(&cli, bind.clone(), synchronous.clone())?;
            config.safe_mode = *safe;
            config.init = *init;
            muninn::ops::logging::init(&config.log);
            let listener = TcpListener::bind(&config.server.bind)
                .with_context(|| format!("cannot listen on {}", config.server.bind))?;
            actix::System::new().block_on(muninn::run(config, listener))?;
            Ok(())
        }
        Command::User { action } => {
            let config = load_config(&cli, None, None)?;
            let mut conn = open_db(&config)?;
            match action {
                UserCommand::Add { name, admin } => {
                    let token = api_tokens::generate();
                    let user = conn.transaction::<_, store::StoreError, _>(|c| {
                        let u = users::insert(c, name.trim(), *admin)?;
                        api_tokens::insert(c, u.id, &token)?;
                        Ok(u)
                    })?;
                    println!(
                        "created user {} (id {}{})",
                        user.name,
                        user.id,
                        if user.is_admin { ", admin" } else { "" }
                    );
                    println!("API token (shown only now; store it safely):");
                    println!("{token}");
                }
                UserCommand::List => {
                    println!("{:>6}  {:<24} {:<6} created", "id", "name", "admin");
                    for u in users::list(&mut conn)? {
                        println!(
                            "{:>6}  {:<24} {:<6} {}",
                            u.id,
                            u.name,
                            if u.is_admin { "yes" } else { "no" },
                            u.created_at.and_utc().to_rfc3339()
                        );
                    }
                }
            }
            Ok(())
        }
        Command::Token { action } => {
            let config = load_config(&cli, None, None)?;
            let mut conn = open_db(&config)?;
            token_command(&mut conn, action)
        }
        Command::Credentials {
            action: CredentialsCommand::List { hub },
        } => {
            let config = load_config(&cli, None, None)?;
            let token = hub_token(&config, hub)?;
            let answer = actix::System::new().block_on(call_hub(
                &hub.url,
                &token,
                "GET",
                "/api/credentials",
                None,
            ))?;
            print_credentials(&answer);
            Ok(())
        }
        Command::Migrate => {
            let config = load_config(&cli, None, None)?;
            if let Some(url) = config.postgres_url() {
                let mut conn = store::postgres::establish_pg(url)?;
                let ran = store::postgres::migrate_pg(&mut conn)?;
                println!(
                    "{} migration(s) applied to {}",
                    ran,
                    store::postgres::redact(url)
                );
                return Ok(());
            }
            store::files::check_marker(&config.storage.data_dir, &config.database_path(), false)?;
            let mut conn = store::establish(&config.store_options())?;
            let ran = store::migrate(&mut conn)?;
            println!(
                "{} migration(s) applied to {}",
                ran,
                config.database_path().display()
            );
            Ok(())
        }
        Command::CopyDb(args) => cli::copy_db::run(&load_config(&cli, None, None)?, args),
        Command::Import { file, hub } => {
            let config = load_config(&cli, None, None)?;
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let body: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", file.display()))?;
            let token = hub_token(&config, hub)?;
            let answer = actix::System::new().block_on(call_hub(
                &hub.url,
                &token,
                "POST",
                "/api/scenarios/import",
                Some(body),
            ))?;
            let (report, whole) = import_report(&answer);
            print!("{report}");
            if !whole {
                anyhow::bail!("the scenario did not come over whole: see the problems above");
            }
            Ok(())
        }
        Command::Export { scenario_id, hub } => {
            let config = load_config(&cli, None, None)?;
            let token = hub_token(&config, hub)?;
            let path = format!("/api/scenarios/{scenario_id}/export");
            let answer =
                actix::System::new().block_on(call_hub(&hub.url, &token, "GET", &path, None))?;
            println!("{}", serde_json::to_string_pretty(&answer)?);
            Ok(())
        }
        Command::Api(args) => {
            // Only the message: a script reads stderr, and a backtrace is no help there.
            if let Err(e) = load_config(&cli, None, None).and_then(|c| cli::run(&c, args)) {
                eprintln!("Error: {e:#}");
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Config => {
            print!("{DEFAULT_CONFIG}");
            Ok(())
        }
        Command::Secrets {
            action: SecretsCommand::RotateKey,
        } => rotate_key(&cli),
        Command::SystemdUnit {
            user,
            bin,
            watchdog_sec,
        } => {
            let cwd = std::env::current_dir().context("cannot read the current directory")?;
            // systemd wants absolute paths; relative ones are taken from here.
            let absolute = |p: PathBuf| if p.is_absolute() { p } else { cwd.join(p) };
            let bin = match bin {
                Some(b) => absolute(b.clone()),
                None => {
                    std::env::current_exe().context("cannot find this binary's path; pass --bin")?
                }
            };
            let defaults = UnitOptions::default();
            let unit = systemd::unit(&UnitOptions {
                user: user.clone(),
                data_dir: cli
                    .data_dir
                    .clone()
                    .map_or(defaults.data_dir.clone(), absolute),
                bin,
                config: cli.config.clone().map(absolute),
                watchdog_sec: *watchdog_sec,
                ..defaults
            });
            print!("{unit}");
            Ok(())
        }
    }
}

fn rotate_key(cli: &Cli) -> Result<()> {
    use muninn::secrets::{KEY_ENV, KeySource};
    let config = load_config(cli, None, None)?;
    let data_dir = &config.storage.data_dir;
    if !data_dir.is_dir() {
        anyhow::bail!(
            "the data directory {} does not exist; pass the hub's --data-dir",
            data_dir.display()
        );
    }
    let mut conn = open_db(&config)?;
    let env = std::env::var(KEY_ENV).ok();
    let r = store::sealed::rotate_key(&mut conn, data_dir, env.as_deref())?;
    println!(
        "secret key rotated to {} ({}); {} value(s) re-encrypted",
        r.new_id, r.source, r.resealed.converted
    );
    if !r.retired.is_empty() {
        match r.source {
            KeySource::Env => println!(
                "now set {KEY_ENV} to the new key alone; key(s) {} are no longer needed",
                r.retired.join(", ")
            ),
            _ => println!("key(s) {} removed", r.retired.join(", ")),
        }
    }
    if !r.resealed.unreadable.is_empty() {
        eprintln!(
            "{} value(s) did not open with any key and were left as they were (set them again through the API):",
            r.resealed.unreadable.len()
        );
        for u in &r.resealed.unreadable {
            eprintln!("  {u}");
        }
    }
    println!(
        "back up the key file (or {KEY_ENV}) again: backups of the database now need the new key"
    );
    Ok(())
}

/// The list answer as a table; only the fields shown, so a value could not slip in.
fn print_credentials(list: &serde_json::Value) {
    println!("{:>6}  {:<32} {:<12} updated", "id", "name", "mode");
    for c in list.as_array().into_iter().flatten() {
        println!(
            "{:>6}  {:<32} {:<12} {}",
            c["id"].as_i64().unwrap_or_default(),
            c["credential_name"].as_str().unwrap_or_default(),
            c["mode"].as_str().unwrap_or_default(),
            c["updated_at"].as_str().unwrap_or_default()
        );
    }
}

fn user_named(conn: &mut store::Conn, name: &str) -> Result<users::UserRow> {
    users::list(conn)?
        .into_iter()
        .find(|u| u.name == name)
        .with_context(|| format!("no user named {name:?}: `muninn user list` shows them"))
}

fn token_command(conn: &mut store::Conn, action: &TokenCommand) -> Result<()> {
    match action {
        TokenCommand::List { user } => {
            let only = match user {
                Some(name) => Some(user_named(conn, name)?.id),
                None => None,
            };
            let names: std::collections::HashMap<i64, String> = users::list(conn)?
                .into_iter()
                .map(|u| (u.id, u.name))
                .collect();
            println!(
                "{:>6}  {:<16} {:<20} {:<6} {:<26} {:<26} revoked",
                "id", "user", "name", "scope", "created", "last used"
            );
            let stamp = |t: Option<chrono::NaiveDateTime>| {
                t.map_or("-".to_string(), |t| t.and_utc().to_rfc3339())
            };
            for t in api_tokens::list(conn, only)? {
                println!(
                    "{:>6}  {:<16} {:<20} {:<6} {:<26} {:<26} {}",
                    t.id,
                    names.get(&t.user_id).map_or("?", String::as_str),
                    t.name,
                    t.scope,
                    stamp(Some(t.created_at)),
                    stamp(t.last_used_at),
                    stamp(t.revoked_at)
                );
            }
        }
        TokenCommand::Create { user, name, scope } => {
            let scope = api_tokens::Scope::parse(scope).with_context(|| {
                format!(
                    "--scope must be {}, not {scope:?}",
                    api_tokens::Scope::NAMES
                )
            })?;
            let u = user_named(conn, user)?;
            let (row, token) = api_tokens::create(conn, u.id, name.trim(), scope)?;
            println!(
                "created token {} ({}, scope {}) for {}",
                row.id, row.name, row.scope, u.name
            );
            println!("API token (shown only now; store it safely):");
            println!("{token}");
        }
        TokenCommand::Revoke { id } => {
            if !api_tokens::revoke(conn, *id)? {
                anyhow::bail!("no live token with id {id}: `muninn token list` shows them");
            }
            println!("revoked token {id}");
        }
        TokenCommand::Rotate { id } => {
            let Some(token) = api_tokens::rotate(conn, *id)? else {
                anyhow::bail!("no live token with id {id}: `muninn token list` shows them");
            };
            println!("rotated token {id}; its new secret (shown only now; store it safely):");
            println!("{token}");
        }
    }
    Ok(())
}

/// The readable report of `muninn import`: what was created and updated, then every
/// piece of the file that did not come over, one per line. `true` when nothing was left
/// out.
fn import_report(answer: &serde_json::Value) -> (String, bool) {
    use std::fmt::Write;
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    let mut out = String::new();
    let scenario = &answer["scenario"];
    let verb = if answer["created"] == true {
        "created"
    } else {
        "updated"
    };
    let _ = writeln!(
        out,
        "scenario {} ({}) {verb}",
        scenario["id"],
        text(&scenario["name"])
    );
    for a in answer["agents"].as_array().into_iter().flatten() {
        let id = a["id"]
            .as_i64()
            .map_or_else(|| "-".to_string(), |i| i.to_string());
        let state = match (a["action"].as_str(), a["disabled"] == true) {
            (Some("skipped"), _) => format!(" (not created: {})", text(&a["reason"])),
            (_, true) => " (disabled)".to_string(),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "  {:<8} {id} {}{state}",
            text(&a["action"]),
            text(&a["name"])
        );
    }
    let c = &answer["counts"];
    let n = |k: &str| c[k].as_u64().unwrap_or(0);
    let _ = writeln!(
        out,
        "agents: {} created, {} updated, {} not created; links: {} made, {} not made; control links: {} made, {} not made",
        n("agents_created"),
        n("agents_updated"),
        n("agents_not_created"),
        n("links_made"),
        n("links_not_made"),
        n("control_links_made"),
        n("control_links_not_made")
    );
    let problems = answer["problems"].as_array().map_or(&[][..], Vec::as_slice);
    for p in problems {
        let _ = writeln!(out, "  problem: {}", text(&p["message"]));
    }
    (out, problems.is_empty())
}
