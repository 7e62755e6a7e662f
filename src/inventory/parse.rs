//! `servers.tsv` reader. Tolerant of what real files contain (BOM, CRLF, comments, blank
//! lines, extra columns, quotes in notes), strict about what would make kbz act on the wrong
//! host, and it reports every problem at once rather than the first.

use super::error::{InventoryError, Problem};
use super::validate::{host_name_problem, is_host_name, is_user_name};
use super::{Host, Inventory, KNOWN_COLUMNS, REQUIRED_COLUMNS};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::Path;

/// One raw row: its line and its fields with the character column each starts at.
struct Row {
    line: usize,
    fields: Vec<(usize, String)>,
}

/// Parses inventory bytes; `file` is only used to name the file in messages.
pub fn parse(file: &Path, bytes: &[u8]) -> Result<Inventory, InventoryError> {
    let mut problems = Vec::new();
    let rows = read_rows(file, bytes, &mut problems);
    let mut rows = rows.into_iter();
    let Some(header) = rows.next() else {
        problems.push(
            Problem::new(file, 0, 0, "the file has no header row").hint(format!(
                "the first row names the columns: {}",
                KNOWN_COLUMNS.join(" ")
            )),
        );
        return Err(InventoryError {
            file: file.to_path_buf(),
            problems,
        });
    };
    let columns = header_columns(file, &header, &mut problems);
    let mut ctx = RowChecker {
        file,
        columns: &columns,
        problems: &mut problems,
        seen_names: HashMap::new(),
        seen_ips: HashMap::new(),
    };
    let hosts: Vec<Host> = rows.filter_map(|row| ctx.host(&row)).collect();
    if problems.is_empty() {
        Ok(Inventory {
            file: file.to_path_buf(),
            columns,
            hosts,
        })
    } else {
        problems.sort_by_key(|p| (p.line, p.column));
        Err(InventoryError {
            file: file.to_path_buf(),
            problems,
        })
    }
}

/// Splits the file into rows of trimmed fields, skipping blank and `#` lines.
fn read_rows(file: &Path, bytes: &[u8], problems: &mut Vec<Problem>) -> Vec<Row> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut rows = Vec::new();
    // Lines are split by hand: TSV has no quoting, and counting lines ourselves keeps line
    // numbers exact whatever the line endings (LF, CRLF, or a mix).
    for (index, raw_line) in bytes.split(|b| *b == b'\n').enumerate() {
        let line = index + 1;
        let raw_line = raw_line.strip_suffix(b"\r").unwrap_or(raw_line);
        if raw_line.first() == Some(&b'#') {
            continue;
        }
        let mut column = 1;
        let mut fields = Vec::new();
        for raw in raw_line.split(|b| *b == b'\t') {
            let text = match std::str::from_utf8(raw) {
                Ok(t) => t.to_string(),
                Err(_) => {
                    problems.push(
                        Problem::new(file, line, column, "this field is not valid UTF-8 text")
                            .hint("save the file as UTF-8"),
                    );
                    String::from_utf8_lossy(raw).into_owned()
                }
            };
            let width = text.chars().count();
            let lead = text.chars().take_while(|c| c.is_whitespace()).count();
            fields.push((column + lead, text.trim().to_string()));
            column += width + 1;
        }
        if fields.iter().all(|(_, f)| f.is_empty()) {
            continue;
        }
        rows.push(Row { line, fields });
    }
    rows
}

/// Upper-cased header names; reports missing required and duplicate columns.
fn header_columns(file: &Path, header: &Row, problems: &mut Vec<Problem>) -> Vec<String> {
    let columns: Vec<String> = header
        .fields
        .iter()
        .map(|(_, f)| f.to_ascii_uppercase())
        .collect();
    let looks_like_data = header
        .fields
        .iter()
        .any(|(_, f)| f.parse::<IpAddr>().is_ok());
    for (i, (col, name)) in header.fields.iter().enumerate() {
        if name.is_empty() {
            problems.push(
                Problem::new(
                    file,
                    header.line,
                    *col,
                    format!("column {} has no name", i + 1),
                )
                .hint("every header field names its column"),
            );
        } else if columns[..i].contains(&columns[i]) {
            problems.push(Problem::new(
                file,
                header.line,
                *col,
                format!("column {name} appears twice in the header"),
            ));
        }
    }
    for required in REQUIRED_COLUMNS {
        if !columns.iter().any(|c| c == required) {
            let hint = if looks_like_data {
                format!(
                    "the first row must be the header: {}",
                    KNOWN_COLUMNS.join(" ")
                )
            } else {
                format!(
                    "add a {required} column; the team's header is: {}",
                    KNOWN_COLUMNS.join(" ")
                )
            };
            problems.push(
                Problem::new(file, header.line, 0, format!("no {required} column")).hint(hint),
            );
        }
    }
    columns
}

struct RowChecker<'a> {
    file: &'a Path,
    columns: &'a [String],
    problems: &'a mut Vec<Problem>,
    /// hostname -> line it was first seen on.
    seen_names: HashMap<String, usize>,
    /// (env, private ip) -> line it was first seen on.
    seen_ips: HashMap<(String, IpAddr), usize>,
}

impl RowChecker<'_> {
    fn problem(&mut self, line: usize, column: usize, message: String, hint: &str) {
        let mut p = Problem::new(self.file, line, column, message);
        if !hint.is_empty() {
            p = p.hint(hint);
        }
        self.problems.push(p);
    }

    /// Builds a host from a row, recording every problem; `None` when the row is unusable.
    fn host(&mut self, row: &Row) -> Option<Host> {
        if row.fields.len() != self.columns.len() {
            let n = row.fields.len();
            let m = self.columns.len();
            self.problem(
                row.line,
                0,
                format!("this row has {n} fields but the header has {m}"),
                "fields are separated by exactly one TAB; an empty value still needs its TAB, \
                 and a TAB inside a value shifts the columns",
            );
            return None;
        }
        let get = |name: &str| -> Option<(usize, &str)> {
            let i = self.columns.iter().position(|c| c == name)?;
            row.fields.get(i).map(|(c, v)| (*c, v.as_str()))
        };
        let before = self.problems.len();
        let line = row.line;

        let required = |checker: &mut Self, name: &str, hint: &str| -> Option<(usize, String)> {
            let (col, value) = get(name)?;
            if value.is_empty() {
                checker.problem(line, col, format!("{name} is empty"), hint);
                return None;
            }
            Some((col, value.to_string()))
        };
        let hostname = required(
            self,
            "HOSTNAME",
            "every host needs its short name, e.g. db-master-01",
        );
        let ip_text = required(
            self,
            "IP_PRIVEE",
            "every host needs its private address, e.g. 10.0.0.120",
        );
        let role = required(
            self,
            "ROLE",
            "every host needs a ROLE; any word will do for a plain host, e.g. app",
        );

        if let Some((col, name)) = &hostname {
            if !is_host_name(name) {
                let why = host_name_problem(name);
                self.problem(
                    line,
                    *col,
                    format!("HOSTNAME {name:?} is not a valid host name: it {why}"),
                    "letters, digits and '-', e.g. redis-01",
                );
            } else if let Some(first) = self.seen_names.get(name) {
                self.problem(
                    line,
                    *col,
                    format!("HOSTNAME {name} is already used on line {first}"),
                    "host names are unique in the file",
                );
            } else {
                self.seen_names.insert(name.clone(), line);
            }
        }
        let env = get("ENV").map(|(_, v)| v.to_string()).unwrap_or_default();
        let ip_private = ip_text.and_then(|(col, text)| {
            let ip = self.ip(line, col, "IP_PRIVEE", &text)?;
            if let Some(first) = self.seen_ips.get(&(env.clone(), ip)) {
                self.problem(
                    line,
                    col,
                    format!("IP_PRIVEE {ip} is already used on line {first} (ENV {env})"),
                    "private addresses are unique within one ENV",
                );
            } else {
                self.seen_ips.insert((env.clone(), ip), line);
            }
            Some(ip)
        });
        let ip_public = match get("IP_PUBLIQUE") {
            Some((_, "" | "-")) | None => None,
            Some((col, text)) => self.ip(line, col, "IP_PUBLIQUE", text),
        };
        let fqdn = match get("FQDN") {
            Some((_, "" | "-")) | None => None,
            Some((col, text)) => {
                if !is_host_name(text) {
                    let why = host_name_problem(text);
                    self.problem(
                        line,
                        col,
                        format!("FQDN {text:?} is not a valid host name: it {why}"),
                        "e.g. db-master.example.net, or leave it empty",
                    );
                }
                Some(text.to_string())
            }
        };
        let user = match get("USER_SSH") {
            Some((_, "")) | None => "root".to_string(),
            Some((col, text)) => {
                if !is_user_name(text) {
                    self.problem(
                        line,
                        col,
                        format!("USER_SSH {text:?} is not a valid user name"),
                        "lower-case letters, digits, '_' and '-', e.g. root or deploy",
                    );
                }
                text.to_string()
            }
        };
        if self.problems.len() > before {
            return None;
        }
        let text = |name: &str| get(name).map(|(_, v)| v.to_string()).unwrap_or_default();
        let extra: BTreeMap<String, String> = self
            .columns
            .iter()
            .zip(&row.fields)
            .filter(|(c, _)| !KNOWN_COLUMNS.contains(&c.as_str()))
            .map(|(c, (_, v))| (c.clone(), v.clone()))
            .collect();
        Some(Host {
            hostname: hostname?.1,
            ip_private: ip_private?,
            ip_public,
            env,
            fqdn,
            user,
            pool: text("POOL"),
            role: role?.1,
            subrole: text("SUBROLE"),
            docker_stack: text("DOCKER_STACK"),
            core: text("CORE"),
            notes: text("NOTES"),
            extra,
            line,
        })
    }

    fn ip(&mut self, line: usize, col: usize, name: &str, text: &str) -> Option<IpAddr> {
        match text.parse::<IpAddr>() {
            Ok(ip) => Some(ip),
            Err(_) => {
                self.problem(
                    line,
                    col,
                    format!("{name} {text:?} is not an IP address"),
                    "an IPv4 or IPv6 address, e.g. 10.0.0.120",
                );
                None
            }
        }
    }
}
