//! `muninn-console`: arguments, terminal setup and restore (also on panic), and the
//! draw loop. The loop never waits on the network: the worker thread does.

use std::io::{self, Stdout};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use muninn_console::app::App;
use muninn_console::input::action_for;
use muninn_console::token;
use muninn_console::ui;
use muninn_console::worker;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{self, Event};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};

/// The muninn operator console: queues, failures, agents and live events of a running
/// hub, and the actions to fix them.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The hub's address.
    #[arg(long, env = "MUNINN_URL", default_value = "http://127.0.0.1:3000")]
    url: String,
    /// API token (else --token-file, else <data dir>/admin.token).
    #[arg(long, env = "MUNINN_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// A file holding the API token on its first line.
    #[arg(long, env = "MUNINN_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// The hub's data directory, where `admin.token` is.
    #[arg(long, env = "MUNINN_DATA_DIR", default_value = "./muninn-data")]
    data_dir: PathBuf,
    /// Refresh interval in milliseconds.
    #[arg(long, default_value_t = 1000)]
    refresh_ms: u64,
}

fn token(args: &Args) -> anyhow::Result<String> {
    Ok(token::resolve(&token::Sources {
        token: args.token.clone(),
        token_file: args.token_file.clone(),
        data_dir: args.data_dir.clone(),
    })?)
}

fn url(raw: &str) -> String {
    let u = raw.trim().trim_end_matches('/');
    if u.starts_with("http://") || u.starts_with("https://") {
        u.to_string()
    } else {
        format!("http://{u}")
    }
}

type Term = Terminal<CrosstermBackend<Stdout>>;

fn setup() -> io::Result<Term> {
    enable_raw_mode()?;
    let mut out = io::stdout();
    if let Err(e) = execute!(out, EnterAlternateScreen) {
        let _ = disable_raw_mode();
        return Err(e);
    }
    Terminal::new(CrosstermBackend::new(out))
}

fn restore() {
    let _ = disable_raw_mode();
    let _ = execute!(
        io::stdout(),
        LeaveAlternateScreen,
        ratatui::crossterm::cursor::Show
    );
}

/// How often an open detail is read again.
const DETAIL_RELOAD: Duration = Duration::from_secs(5);

fn run(term: &mut Term, app: &mut App, w: &worker::Handle) -> io::Result<()> {
    let mut dirty = true;
    let mut last_clock = Instant::now();
    let mut last_reload = Instant::now();
    while !app.quit {
        // Message ages and the data's age are measured against this.
        app.now = chrono::Utc::now();
        while let Ok(u) = w.updates.try_recv() {
            app.apply_update(u);
            dirty = true;
        }
        if last_reload.elapsed() >= DETAIL_RELOAD {
            last_reload = Instant::now();
            if let Some(c) = app.detail_reload() {
                w.send(c);
            }
        }
        if last_clock.elapsed() >= Duration::from_secs(1) {
            last_clock = Instant::now();
            dirty = true;
        }
        if dirty {
            term.draw(|f| ui::draw(f, app))?;
            dirty = false;
        }
        if event::poll(Duration::from_millis(50))? {
            match event::read()? {
                Event::Key(k) => {
                    if let Some(a) = action_for(app, k)
                        && let Some(cmd) = app.apply(a)
                    {
                        w.send(cmd);
                    }
                    dirty = true;
                }
                Event::Resize(..) => {
                    term.autoresize()?;
                    dirty = true;
                }
                _ => {}
            }
        }
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    match console(Args::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One plain line, never a backtrace.
            eprintln!("muninn-console: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

fn console(args: Args) -> anyhow::Result<()> {
    let token = token(&args)?;
    let base = url(&args.url);
    let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let refresh = Duration::from_millis(args.refresh_ms.max(100));
    // The awc client may be asked for https.
    let _ = rustls::crypto::ring::default_provider().install_default();

    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        default_hook(info);
    }));

    let w = worker::start(base.clone(), token, refresh);
    let mut app = App::new(&base, color, refresh);
    let mut term = setup().context("cannot set up the terminal")?;
    let result = run(&mut term, &mut app, &w);
    restore();
    w.stop();
    result.context("terminal error")
}
