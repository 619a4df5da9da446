//! Reading measurements from a file, one report per line.
//!
//! Formats: CSV (`1,0,0,1`) or JSON lines (`[1,0,0,1]`). Each report is, for the whole
//! file, either a 0/1 vector of length `bins` (`--form vector`) or the list of bin indices
//! that are set (`--form indices`: `3` or `[0,3]`; in JSON lines `[]` is a report with no
//! bin set). Blank lines and lines starting with `#` are skipped. Any other line that is
//! not a valid report is an error naming the file and line.

use anyhow::{anyhow, bail, Context, Result};
use std::io::BufRead;
use std::path::{Path, PathBuf};

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

/// Streams the reports of a file.
pub fn read_reports(
    path: &Path,
    format: FileFormat,
    form: ReportForm,
    bins: usize,
) -> Result<impl Iterator<Item = Result<Vec<u32>>>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("opening reports {}", path.display()))?;
    let path: PathBuf = path.to_path_buf();
    let lines = std::io::BufReader::new(file).lines().enumerate();
    Ok(lines.filter_map(move |(n, line)| {
        let at = || format!("{}:{}", path.display(), n + 1);
        let line = match line {
            Ok(l) => l,
            Err(e) => return Some(Err(anyhow!("{}: {e}", at()))),
        };
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            return None;
        }
        Some(parse_report(t, format, form, bins).with_context(at))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let all: Vec<_> = read_reports(&p, FileFormat::Csv, ReportForm::Vector, 2)
            .unwrap()
            .collect();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].as_ref().unwrap(), &vec![1, 0]);
        let e = format!("{:#}", all[1].as_ref().unwrap_err());
        assert!(e.contains("r.csv:4") && e.contains("not 0 or 1"), "{e}");
    }
}
