// SPDX-License-Identifier: GPL-2.0

//! `dm-remap`: the operator tool for dm-remap-v4 devices. Manual: `docs/dm-remap.8.md`.
//!
//! Every failure prints one line, `dm-remap: <message>`, on standard error and exits with the
//! status of its [`error::Kind`]; usage errors exit with 2 (clap's). `status` exits 0 or, when
//! it succeeded, with a health code from 20 up ([`status::health_exit_code`]). Only `create`,
//! `remove`, `repair`, `import`, `discover --create` and the message commands (`unremap`,
//! `clear-pending`, `commit`, `scan`, `message`) change anything.

mod create;
mod device;
mod discover;
mod dm;
mod error;
mod identity;
mod import;
mod offline;
mod ops;
mod prometheus;
mod remaptab;
mod spare;
mod status;

use clap::{Args, Parser, Subcommand};
use error::{outcome, Error, Kind, Outcome};
use std::io::Write;
use ops::ScanAction;
use std::process::ExitCode;

/// Operator tool for dm-remap-v4 devices (see dm-remap(8)).
#[derive(Debug, Parser)]
#[command(name = "dm-remap", version, about)]
struct Cli {
    /// Print nothing on standard output (errors still go to standard error; the exit status
    /// tells the outcome).
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create device NAME over MAIN with SPARE (checked first as the kernel would).
    Create {
        /// The /dev/mapper name.
        name: String,
        /// The main (failing) device.
        main: String,
        /// The spare device.
        spare: String,
        /// Allow formatting a spare that holds foreign data (the table's `1 format`).
        #[arg(long)]
        format: bool,
        /// Print the table line and do nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Remove dm-remap-v4 device NAME.
    Remove {
        /// The /dev/mapper name.
        name: String,
    },
    /// Counters, health, spare use and scan progress of one or all devices; exits by health
    /// (0 ok, 20 degraded, 21 spare low, 22 spare full or failed).
    Status {
        /// The /dev/mapper name (all dm-remap-v4 devices if absent).
        name: Option<String>,
        /// Print JSON instead of text (with the disks' identities).
        #[arg(long, conflicts_with = "prometheus")]
        json: bool,
        /// Print metrics for node_exporter's textfile collector (exits 0 whatever the health).
        #[arg(long)]
        prometheus: bool,
    },
    /// The remapped and pending units of device NAME.
    List {
        /// The /dev/mapper name.
        name: String,
        #[command(flatten)]
        json: Json,
    },
    /// Check the 5 metadata copies on SPARE (read only); non-zero exit on damage.
    Check {
        /// The spare device or an image of it.
        spare: String,
    },
    /// Print the metadata on SPARE: copies, superblock, entries (read only).
    Dump {
        /// The spare device or an image of it.
        spare: String,
        #[command(flatten)]
        json: Json,
    },
    /// Rewrite damaged or stale metadata copies on SPARE from the best valid one.
    Repair {
        /// The spare device or an image of it (opened exclusively).
        spare: String,
    },
    /// Find dm-remap spares, pair them with their main devices, print the table lines.
    Discover {
        #[command(flatten)]
        json: Json,
        /// Create the devices that can be assembled.
        #[arg(long)]
        create: bool,
        /// The remaptab naming pairs and device names.
        #[arg(long, default_value = remaptab::DEFAULT_PATH)]
        remaptab: String,
        /// Assemble only the spares the remaptab names (boot-time assembly).
        #[arg(long)]
        listed_only: bool,
    },
    /// Mark known-bad sectors of device NAME's main disk through `remap` messages.
    Import(ImportArgs),
    /// Copy the unit holding SECTOR of device NAME back to main and drop its remap.
    Unremap {
        /// The /dev/mapper name.
        name: String,
        /// A sector of the unit (512-byte sectors from the start of the device).
        sector: u64,
    },
    /// Forget that the unit holding SECTOR of device NAME failed a read.
    ClearPending {
        /// The /dev/mapper name.
        name: String,
        /// A sector of the unit (512-byte sectors from the start of the device).
        sector: u64,
    },
    /// Write device NAME's metadata changes to the spare now.
    Commit {
        /// The /dev/mapper name.
        name: String,
    },
    /// Control device NAME's background scan.
    Scan {
        /// `start` (enable), `stop` (disable) or `now` (a new pass from sector 0).
        #[arg(value_enum)]
        action: ScanAction,
        /// The /dev/mapper name.
        name: String,
    },
    /// Send MESSAGE to device NAME, or without MESSAGE each line of standard input in turn.
    Message {
        /// The /dev/mapper name.
        name: String,
        /// The message (`docs/messages.md`), e.g. `list` or `remap 4096`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        message: Vec<String>,
    },
}

#[derive(Debug, Args)]
struct Json {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false, id = "source")]
struct ImportSource {
    /// A list written by `badblocks -o FILE`.
    #[arg(long, value_name = "FILE")]
    badblocks: Option<String>,
    /// A GNU ddrescue mapfile.
    #[arg(long, value_name = "FILE")]
    ddrescue_map: Option<String>,
}

#[derive(Debug, Args)]
struct ImportArgs {
    /// The /dev/mapper name.
    name: String,
    #[command(flatten)]
    source: ImportSource,
    /// Block size of the badblocks list in bytes (badblocks -b; its default is 1024).
    #[arg(long, value_name = "BYTES")]
    block_size: Option<u64>,
    /// Print the units that would be marked and send nothing.
    #[arg(long)]
    dry_run: bool,
}

fn with_dm<T>(f: impl FnOnce(&dm::Dm) -> error::Result<T>) -> error::Result<T> {
    f(&dm::Dm::open()?)
}

fn run_import(args: &ImportArgs) -> error::Result<String> {
    if args.block_size.is_some() && args.source.badblocks.is_none() {
        return Err(Error::new(Kind::BadInput, "--block-size applies to --badblocks lists only"));
    }
    let (file, ranges) = match (&args.source.badblocks, &args.source.ddrescue_map) {
        (Some(file), _) => {
            let text = std::fs::read_to_string(file).map_err(|e| Error::io(file, "cannot read", &e))?;
            (file, import::parse_badblocks(file, &text, args.block_size.unwrap_or(1024))?)
        }
        (None, Some(file)) => {
            let text = std::fs::read_to_string(file).map_err(|e| Error::io(file, "cannot read", &e))?;
            (file, import::parse_ddrescue_map(file, &text)?)
        }
        (None, None) => return Err(Error::new(Kind::BadInput, "no input file")),
    };
    with_dm(|dm| {
        let dev = dm.require_remap_device(&args.name)?;
        let info = dm.info_status(&args.name)?;
        let unit = dm_remap_core::status_parse::parse_info(&info)
            .map_err(|e| Error::new(Kind::DeviceMapper, format!("{}: {e}", args.name)))?
            .unit_sectors;
        let units = import::units_of(&ranges, u64::from(unit), dev.len)?;
        if args.dry_run {
            let mut out: String = units.iter().map(|s| format!("remap {s}\n")).collect();
            out.push_str(&format!("{file}: {} units; nothing sent (--dry-run)\n", units.len()));
            return Ok(out);
        }
        import::import(dm, &args.name, &units)
    })
}

/// A command's outcome with its exit status on success: 0, or `status`'s health code.
type Run = (String, error::Result<u8>);

/// An [`Outcome`] that exits 0 on success.
fn ok0((text, result): Outcome) -> Run {
    (text, result.map(|()| 0))
}

/// Runs the command. Output of `message` goes to `out` as each reply arrives; every other
/// command's is returned.
fn run(cli: &Cli, out: &mut dyn Write) -> Run {
    match &cli.command {
        Command::Status { name, json, prometheus } => {
            let format = match (json, prometheus) {
                (_, true) => status::Format::Prometheus,
                (true, false) => status::Format::Json,
                (false, false) => status::Format::Table,
            };
            match with_dm(|dm| status::status(dm, name.as_deref(), format)) {
                Ok((text, code)) => (text, Ok(code)),
                Err(e) => (String::new(), Err(e)),
            }
        }
        Command::Message { name, message } => {
            let stdin = std::io::stdin();
            let mut input = stdin.lock();
            (String::new(), with_dm(|dm| ops::message(dm, name, message, &mut input, out)).map(|()| 0))
        }
        other => ok0(run_simple(other)),
    }
}

/// The commands that return their whole output.
fn run_simple(command: &Command) -> Outcome {
    match command {
        Command::Create { name, main, spare, format, dry_run } => outcome(create::plan(name, main, spare, *format).and_then(|plan| {
            if *dry_run {
                Ok(format!("{}\n", plan.table_line()))
            } else {
                with_dm(|dm| create::create(dm, &plan))
            }
        })),
        Command::Remove { name } => outcome(with_dm(|dm| create::remove(dm, name))),
        Command::List { name, json } => outcome(with_dm(|dm| status::list(dm, name, json.json))),
        Command::Check { spare } => offline::check(spare),
        Command::Dump { spare, json } => offline::dump(spare, json.json),
        Command::Repair { spare } => outcome(offline::repair_cmd(spare)),
        Command::Discover { json, create, remaptab, listed_only } => match remaptab::load(remaptab) {
            Ok(tab) => discover::discover(&tab, json.json, *create, *listed_only),
            Err(e) => (String::new(), Err(e)),
        },
        Command::Import(args) => outcome(run_import(args)),
        Command::Unremap { name, sector } => outcome(with_dm(|dm| ops::unremap(dm, name, *sector))),
        Command::ClearPending { name, sector } => outcome(with_dm(|dm| ops::clear_pending(dm, name, *sector))),
        Command::Commit { name } => outcome(with_dm(|dm| ops::commit(dm, name))),
        Command::Scan { action, name } => outcome(with_dm(|dm| ops::scan(dm, name, *action))),
        // Run by `run` itself (their exit status or output differ); never reached.
        Command::Status { .. } | Command::Message { .. } => (String::new(), Err(Error::new(Kind::BadInput, "internal: status and message are run by run()"))),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut stdout: Box<dyn Write> = if cli.quiet { Box::new(std::io::sink()) } else { Box::new(std::io::stdout().lock()) };
    let (text, result) = run(&cli, &mut stdout);
    // A closed pipe (`dm-remap dump | head`) is not an error of the command.
    let _ = stdout.write_all(text.as_bytes()).and_then(|_| stdout.flush());
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("dm-remap: {e}");
            ExitCode::from(e.kind.exit_code())
        }
    }
}

#[cfg(test)]
mod tests;
