//! All of the CLI's output: one [`Output`] renders every result either as a
//! table (human-oriented text) or as JSON (one document per result, shape
//! documented in docs/cli.md), and prints the one-line error of a failure.

use std::io::Write;

use serde::Serialize;
use strom_client::{Error, ErrorCode};

/// `--output table|json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// Human-oriented text, like Kafka's tools.
    Table,
    /// Machine-readable JSON, one document per line.
    Json,
}

/// How a value looks in table format.
pub(crate) trait Table {
    /// The lines to print, without trailing newline.
    fn table(&self) -> Vec<String>;
}

/// Where every command writes its results.
#[derive(Debug)]
pub(crate) struct Output {
    format: Format,
}

impl Output {
    pub(crate) fn new(format: Format) -> Self {
        Self { format }
    }

    pub(crate) fn format(&self) -> Format {
        self.format
    }

    /// Prints `value` in the selected format.
    pub(crate) fn print<T: Serialize + Table + ?Sized>(&self, value: &T) {
        match self.format {
            Format::Table => self.lines(&value.table()),
            Format::Json => self.json(value),
        }
    }

    /// Prints `value` as one line of JSON.
    pub(crate) fn json<T: Serialize + ?Sized>(&self, value: &T) {
        let text = serde_json::to_string(value).expect("output values always serialize");
        self.lines(&[text]);
    }

    /// Prints lines on stdout. A closed stdout (`strom … | head`) is not an error.
    pub(crate) fn lines(&self, lines: &[String]) {
        let _ = self.try_lines(lines);
    }

    /// Prints lines on stdout; `false` once stdout is closed (`strom … |
    /// head`), so a long-running command can stop.
    pub(crate) fn try_lines(&self, lines: &[String]) -> bool {
        let mut stdout = std::io::stdout().lock();
        for line in lines {
            if writeln!(stdout, "{line}").is_err() {
                return false;
            }
        }
        stdout.flush().is_ok()
    }

    /// Prints the one-line error of a failed command on stderr.
    pub(crate) fn error(&self, error: &Error) {
        let _ = writeln!(std::io::stderr().lock(), "{}", error_line(error));
    }
}

/// `error: <ERROR_CODE>: <what and why>`; client-side argument errors carry
/// INVALID_REQUEST.
pub(crate) fn error_line(error: &Error) -> String {
    let code = error.code().unwrap_or(ErrorCode::InvalidRequest);
    format!("error: {}: {}", code.as_str_name(), error.detail())
}

/// Formats ids as `1,2,3`.
pub(crate) fn id_list(ids: &[i32]) -> String {
    ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

/// Left-aligned columns separated by two spaces.
pub(crate) fn columns(rows: &[Vec<String>]) -> Vec<String> {
    let widths: Vec<usize> = (0..rows.first().map_or(0, Vec::len))
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    rows.iter()
        .map(|row| {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            cells.join("  ").trim_end().to_owned()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_line_has_the_documented_format() {
        let table = [
            (
                Error::strom(ErrorCode::TopicAlreadyExists, "topic 'a' already exists"),
                "error: TOPIC_ALREADY_EXISTS: topic 'a' already exists",
            ),
            (
                Error::Timeout {
                    what: "describe cluster did not complete within 5 ms".into(),
                },
                "error: REQUEST_TIMED_OUT: describe cluster did not complete within 5 ms",
            ),
            (
                Error::InvalidArgument("bad\ninput".into()),
                "error: INVALID_REQUEST: bad input",
            ),
            (
                Error::Transport {
                    address: "h:1".into(),
                    source: tonic::Status::unavailable("refused"),
                },
                "error: NETWORK_EXCEPTION: cannot reach h:1: refused",
            ),
        ];
        for (error, want) in table {
            assert_eq!(error_line(&error), want);
        }
    }

    #[test]
    fn columns_align_and_trim() {
        let rows = vec![
            vec!["ID".to_owned(), "ADDRESS".to_owned(), "RACK".to_owned()],
            vec!["10".to_owned(), "h:1".to_owned(), String::new()],
        ];
        assert_eq!(columns(&rows), ["ID  ADDRESS  RACK", "10  h:1"]);
    }
}
