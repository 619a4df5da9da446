//! Reading measurements from a file, one report per line.
//!
//! Formats: CSV (`1,0,0,1`) or JSON lines (`[1,0,0,1]`). Each report is, for the whole
//! file, either a 0/1 vector of length `bins` (`--form vector`) or the list of bin indices
//! that are set (`--form indices`: `3` or `[0,3]`; in JSON lines `[]` is a report with no
//! bin set; in CSV an empty line is one, as an indices list with nothing in it). Lines
//! starting with `#` are skipped, and so are blank lines where a blank line cannot be a
//! report (vectors, JSON lines). Any other line that is not a valid report is an error
//! naming the file and line. The reports come from a file or from standard input (`-`).

use anyhow::{anyhow, bail, Context, Result};
use std::io::BufRead;
use std::path::{Path, PathBuf};

/// Where the reports come from: a file, or standard input (`--input -`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportSource {
    File(PathBuf),
    Stdin,
}

impl ReportSource {
    /// `-` is standard input; anything else a file.
    pub fn from_arg(path: &Path) -> Self {
        match path.to_str() {
            Some("-") => ReportSource::Stdin,
            _ => ReportSource::File(path.to_path_buf()),
        }
    }

    /// How lines are named in errors (`reports.csv:3`, `standard input:3`).
    pub fn name(&self) -> String {
        match self {
            ReportSource::File(path) => path.display().to_string(),
            ReportSource::Stdin => "standard input".into(),
        }
    }

    /// The format given, else the file's by its extension; standard input has no
    /// extension to go by, so it needs the format given.
    pub fn format(&self, given: Option<FileFormat>) -> Result<FileFormat> {
        match (given, self) {
            (Some(format), _) => Ok(format),
            (None, ReportSource::File(path)) => Ok(FileFormat::from_extension(path)),
            (None, ReportSource::Stdin) => {
                bail!("--input - (standard input) needs --format csv or --format jsonl")
            }
        }
    }

    fn open(&self) -> Result<Box<dyn BufRead>> {
        match self {
            ReportSource::File(path) => {
                let file = std::fs::File::open(path)
                    .with_context(|| format!("opening reports {}", path.display()))?;
                Ok(Box::new(std::io::BufReader::new(file)))
            }
            ReportSource::Stdin => Ok(Box::new(std::io::stdin().lock())),
        }
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
pub enum FileFormat {
    Csv,
    Jsonl,
}

impl FileFormat {
    /// `.jsonl`/`.json`/`.ndjson` are JSON lines; everything else is CSV.
    pub fn from_extension(path: &Path) -> Self {
        match path.extension().and_then(|e| e.to_str()) {
            Some("jsonl" | "json" | "ndjson") => FileFormat::Jsonl,
            _ => FileFormat::Csv,
        }
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
pub enum ReportForm {
    /// A 0/1 vector of length `bins`.
    Vector,
    /// The indices of the bins that are set.
    Indices,
}

/// Parses one line into a measurement of `bins` entries.
pub fn parse_report(
    line: &str,
    format: FileFormat,
    form: ReportForm,
    bins: usize,
) -> Result<Vec<u32>> {
    let numbers: Vec<i64> = match format {
        // An empty CSV line lists no bins (it is a report only in the indices form).
        FileFormat::Csv if line.is_empty() => Vec::new(),
        FileFormat::Csv => line
            .split(',')
            .map(|f| {
                f.trim()
                    .parse::<i64>()
                    .map_err(|_| anyhow!("{:?} is not an integer", f.trim()))
            })
            .collect::<Result<_>>()?,
        FileFormat::Jsonl => {
            serde_json::from_str(line).map_err(|e| anyhow!("not a JSON array of integers: {e}"))?
        }
    };
    match form {
        ReportForm::Vector => {
            if numbers.len() != bins {
                bail!("has {} entries, expected {bins}", numbers.len());
            }
            numbers
                .iter()
                .map(|&n| match n {
                    0 | 1 => Ok(n as u32),
                    _ => Err(anyhow!("entry {n} is not 0 or 1")),
                })
                .collect()
        }
        ReportForm::Indices => {
            let mut m = vec![0u32; bins];
            for &i in &numbers {
                let slot = usize::try_from(i)
                    .ok()
                    .and_then(|i| m.get_mut(i))
                    .ok_or_else(|| anyhow!("bin index {i} is outside 0..{bins}"))?;
                if *slot == 1 {
                    bail!("bin index {i} is listed twice");
                }
                *slot = 1;
            }
            Ok(m)
        }
    }
}

/// Whether a line (trimmed) is skipped rather than read as a report: comments, and blank
/// lines except in CSV indices, where a blank line is the report with no bin set.
fn skipped(line: &str, format: FileFormat, form: ReportForm) -> bool {
    let empty_report = format == FileFormat::Csv && form == ReportForm::Indices;
    line.starts_with('#') || (line.is_empty() && !empty_report)
}

/// How many reports a file holds (its lines that are not skipped), for a progress bar's
/// total; None for standard input, which can be read only once. Lines are not parsed:
/// a line that is not a valid report counts, and fails when it is read.
pub fn count_reports(
    source: &ReportSource,
    format: FileFormat,
    form: ReportForm,
) -> Result<Option<u64>> {
    if *source == ReportSource::Stdin {
        return Ok(None);
    }
    let mut count = 0;
    for line in source.open()?.lines() {
        let line = line.with_context(|| format!("reading {}", source.name()))?;
        if !skipped(line.trim(), format, form) {
            count += 1;
        }
    }
    Ok(Some(count))
}

/// Streams the reports of a file or of standard input.
pub fn read_reports(
    source: &ReportSource,
    format: FileFormat,
    form: ReportForm,
    bins: usize,
) -> Result<impl Iterator<Item = Result<Vec<u32>>>> {
    let name = source.name();
    let lines = source.open()?.lines().enumerate();
    Ok(lines.filter_map(move |(n, line)| {
        let at = || format!("{name}:{}", n + 1);
        let line = match line {
            Ok(l) => l,
            Err(e) => return Some(Err(anyhow!("{}: {e}", at()))),
        };
        let t = line.trim();
        if skipped(t, format, form) {
            return None;
        }
        Some(parse_report(t, format, form, bins).with_context(at))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_count_of_a_file_is_the_number_of_reports_read() {
        let dir = tempfile::tempdir().unwrap();
        for (text, format, form) in [
            (
                "# header\n1,0\n\n0,1\n  \n1,1\n",
                FileFormat::Csv,
                ReportForm::Vector,
            ),
            // In CSV indices a blank line is the report with no bin set.
            ("# header\n1\n\n0\n", FileFormat::Csv, ReportForm::Indices),
            (
                "[1]\n\n# x\n[]\n[0,1]",
                FileFormat::Jsonl,
                ReportForm::Indices,
            ),
        ] {
            let path = dir.path().join("reports");
            std::fs::write(&path, text).unwrap();
            let source = ReportSource::File(path);
            let read = read_reports(&source, format, form, 2).unwrap().count() as u64;
            assert_eq!(
                count_reports(&source, format, form).unwrap(),
                Some(read),
                "{text:?}"
            );
        }
        let stdin = ReportSource::Stdin;
        let counted = count_reports(&stdin, FileFormat::Csv, ReportForm::Vector).unwrap();
        assert_eq!(counted, None);
    }

    #[test]
    fn forms() {
        use FileFormat::*;
        use ReportForm::*;
        assert_eq!(
            parse_report("1,0,1", Csv, Vector, 3).unwrap(),
            vec![1, 0, 1]
        );
        assert_eq!(
            parse_report("[0,1,0]", Jsonl, Vector, 3).unwrap(),
            vec![0, 1, 0]
        );
        assert_eq!(parse_report("2", Csv, Indices, 3).unwrap(), vec![0, 0, 1]);
        assert_eq!(
            parse_report("[0,2]", Jsonl, Indices, 3).unwrap(),
            vec![1, 0, 1]
        );
        assert_eq!(parse_report("[]", Jsonl, Indices, 2).unwrap(), vec![0, 0]);
        for (line, fmt, form) in [
            ("1,2,0", Csv, Vector),
            ("1,0", Csv, Vector),
            ("a,b,c", Csv, Vector),
            ("3", Csv, Indices),
            ("-1", Csv, Indices),
            ("1,1", Csv, Indices),
            ("{}", Jsonl, Vector),
        ] {
            assert!(parse_report(line, fmt, form, 3).is_err(), "{line}");
        }
    }

    #[test]
    fn file_errors_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.csv");
        std::fs::write(&p, "# comment\n1,0\n\n0,2\n").unwrap();
        let source = ReportSource::File(p.clone());
        let all: Vec<_> = read_reports(&source, FileFormat::Csv, ReportForm::Vector, 2)
            .unwrap()
            .collect();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].as_ref().unwrap(), &vec![1, 0]);
        let e = format!("{:#}", all[1].as_ref().unwrap_err());
        assert!(e.contains("r.csv:4") && e.contains("not 0 or 1"), "{e}");
    }

    #[test]
    fn an_empty_csv_line_is_an_empty_report_in_the_indices_form() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.csv");
        std::fs::write(&p, "# comment\n0\n\n  \n2\n").unwrap();
        let source = ReportSource::File(p);
        let read = |form| -> Vec<Vec<u32>> {
            read_reports(&source, FileFormat::Csv, form, 3)
                .unwrap()
                .collect::<Result<_>>()
                .unwrap()
        };
        let empty = vec![0, 0, 0];
        assert_eq!(
            read(ReportForm::Indices),
            [vec![1, 0, 0], empty.clone(), empty, vec![0, 0, 1]]
        );
        std::fs::write(dir.path().join("v.csv"), "1,0,0\n\n0,0,1\n").unwrap();
        let vectors = ReportSource::File(dir.path().join("v.csv"));
        let all = read_reports(&vectors, FileFormat::Csv, ReportForm::Vector, 3).unwrap();
        assert_eq!(all.count(), 2, "blank lines are no vectors");
    }

    #[test]
    fn standard_input_needs_a_format() {
        let stdin = ReportSource::from_arg(Path::new("-"));
        assert_eq!(stdin, ReportSource::Stdin);
        let e = stdin.format(None).unwrap_err().to_string();
        assert!(e.contains("--format"), "{e}");
        assert_eq!(
            stdin.format(Some(FileFormat::Jsonl)).unwrap(),
            FileFormat::Jsonl
        );
        let file = ReportSource::from_arg(Path::new("r.ndjson"));
        assert_eq!(file.format(None).unwrap(), FileFormat::Jsonl);
    }
}
