//! `muninn copy-db --from DB --to DB`: a stopped hub's whole database into another one
//! (SQLite to PostgreSQL, or back), printed table by table. The work is
//! `store::copy`'s; this file is its command line.

use std::time::Instant;

use anyhow::Result;
use muninn::config::Config;
use muninn::store::copy::{CopyOptions, Location, copy_database};

#[derive(clap::Args)]
pub struct CopyDbArgs {
    /// The database to copy: a SQLite file (or sqlite:// URL) or a postgres:// URL.
    #[arg(long)]
    pub from: String,
    /// The database to copy into: a SQLite file (made if missing) or a postgres:// URL
    /// of an existing, empty database. Its schema is migrated first.
    #[arg(long)]
    pub to: String,
    /// Delete everything the target holds before copying, instead of refusing a target
    /// that holds data.
    #[arg(long)]
    pub replace: bool,
}

pub fn run(config: &Config, args: &CopyDbArgs) -> Result<()> {
    let opts = CopyOptions {
        from: Location::parse(&args.from),
        to: Location::parse(&args.to),
        replace: args.replace,
        data_dir: Some(config.storage.data_dir.clone()),
    };
    println!("copying {} -> {}", opts.from.describe(), opts.to.describe());
    let started = Instant::now();
    let copied = copy_database(&opts, &mut |table, rows| {
        println!("  {table:<24} {rows:>10} rows");
    })?;
    println!(
        "copied {} rows of {} tables in {:.1} s; new events get ids above {}",
        copied.rows(),
        copied.tables.len(),
        started.elapsed().as_secs_f64(),
        copied.last_event_id
    );
    println!(
        "secrets were copied sealed, as they were: run the hub on {} with the same secret \
         key (the data directory's secret.key, or MUNINN_SECRET_KEY)",
        opts.to.describe()
    );
    Ok(())
}
