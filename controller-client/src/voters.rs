//! The controller quorum as nodes name it (`--controller-quorum-voters`),
//! and the error of node settings.

use std::collections::BTreeMap;

/// A configuration problem, reported before anything starts: a bad voter
/// list, or a controller or broker setting out of range.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Parses `--controller-quorum-voters`: `id@host:port,id@host:port,...`.
pub fn parse_voters(s: &str) -> Result<BTreeMap<u64, String>, ConfigError> {
    let mut voters = BTreeMap::new();
    if s.trim().is_empty() {
        return Err(ConfigError(
            "controller quorum voters is empty; expected id@host:port,...".into(),
        ));
    }
    for part in s.split(',') {
        let part = part.trim();
        let (id, addr) = part.split_once('@').ok_or_else(|| {
            ConfigError(format!("voter '{part}' is not of the form id@host:port"))
        })?;
        let id: u64 = id
            .parse()
            .map_err(|_| ConfigError(format!("voter '{part}' has an invalid node id '{id}'")))?;
        let (host, port) = addr.rsplit_once(':').ok_or_else(|| {
            ConfigError(format!("voter '{part}' has no port; expected id@host:port"))
        })?;
        if host.is_empty() {
            return Err(ConfigError(format!("voter '{part}' has an empty host")));
        }
        match port.parse::<u16>() {
            Ok(p) if p > 0 => {}
            _ => {
                return Err(ConfigError(format!(
                    "voter '{part}' has an invalid port '{port}'"
                )));
            }
        }
        if voters.insert(id, addr.to_owned()).is_some() {
            return Err(ConfigError(format!("voter id {id} appears twice")));
        }
    }
    Ok(voters)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voters_parse_or_name_the_problem() {
        let ok = parse_voters("1@a:9093,2@b:9093,3@[::1]:9093").expect("valid");
        assert_eq!(ok.len(), 3);
        assert_eq!(ok[&3], "[::1]:9093");
        let bad = [
            ("", "empty"),
            ("1@a:9093,", "not of the form"),
            ("x@a:9093", "invalid node id"),
            ("1a:9093", "not of the form"),
            ("1@a", "no port"),
            ("1@a:99999", "invalid port"),
            ("1@:9093", "empty host"),
            ("1@a:1,1@b:2", "appears twice"),
        ];
        for (input, want) in bad {
            let err = parse_voters(input).expect_err(input);
            assert!(err.0.contains(want), "{input}: {err}");
        }
    }
}
