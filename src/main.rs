//! The `muninn` command line: run the hub, manage users, migrate, print the config.

use std::net::TcpListener;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};
use diesel::Connection;

use muninn::config::{Config, DEFAULT_CONFIG, Overrides};
use muninn::ops::systemd::{self, UnitOptions};
use muninn::store::{self, api_tokens, users};

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
    /// SQLite database path or sqlite:// URL [default: <data dir>/muninn.db]
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
    },
    /// Add or list users (works while the hub is running).
    User {
        #[command(subcommand)]
        action: UserCommand,
    },
    /// Apply pending database migrations and exit (`serve` also does this at start).
    Migrate,
    /// Print the default configuration file, every key documented.
    Config,
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
    let mut conn = store::establish(&config.store_options())?;
    store::migrate(&mut conn)?;
    Ok(conn)
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match &cli.command {
        Command::Serve { bind, synchronous } => {
            let config = load_config(&cli, bind.clone(), synchronous.clone())?;
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
        Command::Migrate => {
            let config = load_config(&cli, None, None)?;
            let mut conn = store::establish(&config.store_options())?;
            let ran = store::migrate(&mut conn)?;
            println!(
                "{} migration(s) applied to {}",
                ran,
                config.database_path().display()
            );
            Ok(())
        }
        Command::Config => {
            print!("{DEFAULT_CONFIG}");
            Ok(())
        }
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
