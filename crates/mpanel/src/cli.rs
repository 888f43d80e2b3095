//! The command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use mpanel_services::tenants::CreateTenant;

use crate::config::{self, Config};
use crate::{admin, billing, db_backup, hosting, logging, serve, worker};

#[derive(Debug, Parser)]
#[command(
    name = "mpanel",
    version,
    about = "mPanel: control panel and billing platform for hosting providers",
    long_about = "mPanel: control panel and billing platform for hosting providers.\n\n\
        Configuration: built-in defaults < mpanel.toml (or --config / MPANEL_CONFIG) \
        < MPANEL_* environment variables (see the README)."
)]
pub struct Cli {
    /// Configuration file (TOML). Default: ./mpanel.toml when present.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply migrations and serve the API, with the job workers and scheduler, until SIGINT/SIGTERM.
    Serve(ServeArgs),
    /// Run the job workers and scheduler only, without HTTP, until SIGINT/SIGTERM.
    Worker,
    /// Apply pending database migrations and print what was done.
    Migrate(MigrateArgs),
    /// Write a consistent copy of mPanel's database to a new file while
    /// mPanel serves (SQLite: VACUUM INTO; PostgreSQL: pg_dump). Prints
    /// what was written as JSON.
    Backup(BackupArgs),
    /// Restore a backup made by `mpanel backup` into the configured
    /// database, which must be empty unless --force. Stop mPanel first.
    Restore(RestoreArgs),
    /// Operator tasks: create tenants and users.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Billing tasks.
    #[command(subcommand)]
    Billing(BillingCommand),
    /// Hosting tasks.
    #[command(subcommand)]
    Hosting(HostingCommand),
    /// Server inventory tasks.
    #[command(subcommand)]
    Servers(ServersCommand),
    /// CloudPod tasks.
    #[command(subcommand)]
    Cloudpods(CloudpodsCommand),
    /// Backups of sites and mailboxes (restic).
    #[command(subcommand)]
    Backups(BackupsCommand),
}

#[derive(Debug, Subcommand)]
pub enum BackupsCommand {
    /// Take new sites and mailboxes in and run every backup that is due
    /// (what the hourly `backup.schedule` job queues), each here and now,
    /// then prune by its policy. Prints the report as JSON.
    Run(BackupsRunArgs),
}

#[derive(Debug, Args)]
pub struct BackupsRunArgs {
    /// Run as of this moment (what is due then; the snapshots' time): a
    /// date (the end of that day, UTC) or an RFC 3339 time. Default: now.
    #[arg(long, value_name = "DATE")]
    pub as_of: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum CloudpodsCommand {
    /// Read every pod's usage now (what the 5-minute `cloudpod.usage` job
    /// does): CPU, memory, network counters, and metered transfer
    /// recorded as usage. Prints the report as JSON.
    Usage,
    /// Queue the backups that are due now (what the hourly
    /// `cloudpod.backup_schedule` job does). Prints how many as JSON.
    Backups,
}

#[derive(Debug, Subcommand)]
pub enum ServersCommand {
    /// Check every server now (what the minutely `servers.health_check`
    /// job does): reachability, and a Proxmox VE cluster's nodes through
    /// its API. Prints how many were checked as JSON.
    Check,
}

#[derive(Debug, Subcommand)]
pub enum HostingCommand {
    /// Measure every hosting account's disk use now (what the hourly
    /// `hosting.disk_usage` job does): record it, tell the tenant of
    /// accounts over quota and, by its policy, queue their suspension (or
    /// its lifting). Prints the report as JSON.
    DiskUsage(DiskUsageArgs),
}

#[derive(Debug, Args)]
pub struct DiskUsageArgs {
    /// Measure as of this moment (the time recorded and compared with the
    /// grace): a date (the end of that day, UTC) or an RFC 3339 time.
    /// Default: now.
    #[arg(long, value_name = "DATE")]
    pub as_of: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum BillingCommand {
    /// Issue the renewal invoices that are due (with usage in arrears),
    /// end subscriptions whose term ran out, and take the dunning steps
    /// that are due. Safe to re-run: nothing is invoiced twice.
    Run(BillingRunArgs),
}

#[derive(Debug, Args)]
pub struct BillingRunArgs {
    /// Only this tenant (its slug).
    #[arg(long)]
    pub tenant: Option<String>,
    /// Bill as of this moment: a date (the end of that day, UTC) or an
    /// RFC 3339 time. Default: now.
    #[arg(long, value_name = "DATE")]
    pub as_of: Option<String>,
    /// Report what would be done; change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Serve HTTP only; leave the job queue to `mpanel worker` processes.
    #[arg(long)]
    pub no_workers: bool,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The backup file to write; it must not exist.
    #[arg(long, value_name = "FILE")]
    pub to: PathBuf,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup file (`mpanel backup`'s: a SQLite file or a pg_dump).
    #[arg(long, value_name = "FILE")]
    pub from: PathBuf,
    /// Replace a database that already holds tables (SQLite: the file is
    /// replaced; PostgreSQL: the backup's tables are dropped and restored).
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Only show which migrations are applied and pending; change nothing.
    #[arg(long)]
    pub status: bool,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a tenant (a hosting brand) and print it.
    CreateTenant(CreateTenantArgs),
    /// Create a user of a tenant with a role and print it.
    CreateUser(CreateUserArgs),
}

#[derive(Debug, Args)]
pub struct CreateUserArgs {
    /// The tenant's slug.
    #[arg(long)]
    pub tenant: String,
    #[arg(long)]
    pub email: String,
    /// SUPER_ADMIN, TENANT_ADMIN, BILLING, SUPPORT or CUSTOMER.
    #[arg(long)]
    pub role: String,
    /// Display name.
    #[arg(long, default_value = "")]
    pub name: String,
    /// 12 to 128 characters; without it a random one is made and printed once.
    /// (Prefer leaving it out: a password on the command line lands in shell history.)
    #[arg(long)]
    pub password: Option<String>,
}

#[derive(Debug, Args)]
pub struct CreateTenantArgs {
    /// URL-safe identifier: a-z, 0-9 and '-', 2 to 63 characters.
    #[arg(long)]
    pub slug: String,
    /// Display name.
    #[arg(long)]
    pub name: String,
    /// IANA time zone billing periods are anchored in.
    #[arg(long, default_value = "UTC")]
    pub timezone: String,
    /// Default ISO 4217 currency.
    #[arg(long, default_value = "USD")]
    pub currency: String,
}

/// Exit code for a bad configuration (like clap's for bad arguments).
const EXIT_CONFIG: u8 = 2;

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("mpanel: {err}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    logging::init(config.log_format, &config.log_level);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("mpanel: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("mpanel: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => {
            serve::run(config, !args.no_workers, crate::shutdown::signal(), |_| {}).await
        }
        Command::Worker => worker::run(config).await,
        Command::Migrate(args) => migrate(config, args).await,
        Command::Backup(args) => db_backup::backup_cmd(config, args.to).await,
        Command::Restore(args) => db_backup::restore_cmd(config, args.from, args.force).await,
        Command::Admin(AdminCommand::CreateTenant(args)) => {
            admin::create_tenant_cmd(
                config,
                CreateTenant {
                    slug: args.slug,
                    name: args.name,
                    timezone: args.timezone,
                    default_currency: args.currency,
                    profile: Default::default(),
                },
            )
            .await
        }
        Command::Admin(AdminCommand::CreateUser(args)) => {
            admin::create_user_cmd(config, args).await
        }
        Command::Billing(BillingCommand::Run(args)) => billing::run_cmd(config, args).await,
        Command::Hosting(HostingCommand::DiskUsage(args)) => {
            hosting::disk_usage_cmd(config, args).await
        }
        Command::Servers(ServersCommand::Check) => hosting::servers_check_cmd(config).await,
        Command::Cloudpods(command) => hosting::cloudpods_cmd(config, command).await,
        Command::Backups(BackupsCommand::Run(args)) => hosting::backups_run_cmd(config, args).await,
    }
}

async fn migrate(config: Config, args: MigrateArgs) -> anyhow::Result<()> {
    use anyhow::Context;
    use secrecy::ExposeSecret;
    let store = mpanel_store::Store::connect(config.database_url.expose_secret(), &config.pool)
        .await
        .with_context(|| {
            format!(
                "cannot open the database {}",
                config.database_url_redacted()
            )
        })?;
    let target = config.database_url_redacted();
    if args.status {
        let status = store.migration_status().await?;
        println!("database: {target}");
        println!("applied: {:?}", status.applied);
        for m in &status.pending {
            println!("pending: {} {}", m.version, m.description);
        }
        if !status.unknown.is_empty() {
            println!("applied by a newer release: {:?}", status.unknown);
        }
        println!(
            "{}",
            if status.is_current() {
                "up to date"
            } else {
                "not up to date"
            }
        );
    } else {
        let applied = store.migrate().await.context("cannot apply migrations")?;
        if applied.is_empty() {
            println!("{target}: up to date, nothing to apply");
        }
        for m in &applied {
            println!("applied {} {}", m.version, m.description);
        }
        if !applied.is_empty() {
            println!(
                "{target}: {} migration(s) applied, now up to date",
                applied.len()
            );
        }
    }
    store.close().await;
    Ok(())
}
