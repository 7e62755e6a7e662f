//! Destructive actions go through a confirmation: the app builds a `ConfirmAction`, the popup
//! shows it, and only the popup can turn it into a `ConfirmedAction`, the one thing the event
//! loop executes. In ENV prod the operator types the target's name instead of pressing `y`.

/// What would be done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pending {
    /// A command on hosts; its output goes to the log pane, its exit to the command log.
    Run { hosts: Vec<String>, command: String },
    /// Record a host key that known_hosts did not have, after the operator compared it.
    TrustKey { host: String, key: String },
    /// Install (cleanup, install, verify) a module, or it and every later one; or clean it up.
    Modules {
        number: u32,
        name: String,
        from: bool,
        install: bool,
        wipes: String,
    },
    /// A failover test: one fault on one host, healed whatever happens.
    Failover {
        cluster: String,
        fault: crate::failover::fault::FaultKind,
        /// A host, or None for the leader.
        target: Option<String>,
        force: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfirmAction {
    pub title: String,
    pub body: Vec<String>,
    /// What must be typed to confirm (prod); `None`: `y` confirms.
    pub typed: Option<String>,
    pub input: String,
    pending: Pending,
}

/// An action the operator confirmed; only `ConfirmAction::key` makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfirmedAction(Pending);

impl ConfirmedAction {
    pub fn pending(&self) -> &Pending {
        &self.0
    }
}

/// The popup's answer to a key.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    Waiting,
    Cancelled,
    Confirmed(ConfirmedAction),
}

impl ConfirmAction {
    pub fn new(pending: Pending, prod: bool) -> ConfirmAction {
        let (title, body, target) = match &pending {
            Pending::Run { hosts, command } => (
                format!(
                    "run on {}",
                    if hosts.len() == 1 {
                        hosts[0].clone()
                    } else {
                        format!("{} hosts", hosts.len())
                    }
                ),
                vec![format!("$ {command}"), format!("on: {}", hosts.join(", "))],
                if hosts.len() == 1 {
                    hosts[0].clone()
                } else {
                    format!("{} hosts", hosts.len())
                },
            ),
            Pending::TrustKey { host, key } => (
                format!("accept {host}'s host key"),
                vec![
                    "known_hosts has no key for this host. It presented:".into(),
                    format!("  {key}"),
                    "Compare it with the host's own (ssh-keygen -lf".into(),
                    "/etc/ssh/ssh_host_ed25519_key.pub on its console).".into(),
                ],
                host.clone(),
            ),
            Pending::Modules {
                number,
                name,
                from,
                install,
                wipes,
            } => {
                let what = match (install, from) {
                    (true, false) => format!("install module {number} {name}"),
                    (true, true) => format!("install modules {number} {name} and later"),
                    (false, _) => format!("clean module {number} {name} up"),
                };
                let mut body = vec![if *install {
                    "cleanup, install, verify, on every target host".to_string()
                } else {
                    "stops and removes what the module installed".to_string()
                }];
                if !wipes.is_empty() {
                    body.push(format!("cleanup wipes: {wipes}"));
                }
                (what, body, name.clone())
            }
            Pending::Failover {
                cluster,
                fault,
                target,
                force,
            } => {
                let on = target
                    .as_deref()
                    .map_or("its current leader".to_string(), |t| format!("host {t}"));
                let mut body = vec![
                    format!(
                        "{} on {on}, while a client writes through the",
                        fault.name()
                    ),
                    "client path; the fault is healed whatever happens (Esc".into(),
                    "stops the test at once), then every write is read back.".into(),
                ];
                if *force {
                    body.push("FORCED: runs even if the preflight says it cannot fail over".into());
                }
                (format!("failover test on {cluster}"), body, cluster.clone())
            }
        };
        ConfirmAction {
            title,
            body,
            typed: prod.then_some(target),
            input: String::new(),
            pending,
        }
    }

    pub fn key(&mut self, key: crossterm::event::KeyCode) -> Answer {
        use crossterm::event::KeyCode;
        match (key, &self.typed) {
            (KeyCode::Esc, _) => Answer::Cancelled,
            (KeyCode::Char('y'), None) => Answer::Confirmed(ConfirmedAction(self.pending.clone())),
            (KeyCode::Char('n'), None) => Answer::Cancelled,
            (KeyCode::Char(c), Some(_)) => {
                self.input.push(c);
                Answer::Waiting
            }
            (KeyCode::Backspace, Some(_)) => {
                self.input.pop();
                Answer::Waiting
            }
            (KeyCode::Enter, Some(name)) if self.input == *name => {
                Answer::Confirmed(ConfirmedAction(self.pending.clone()))
            }
            _ => Answer::Waiting,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::KeyCode;

    fn run() -> Pending {
        Pending::Run {
            hosts: vec!["redis-01".into()],
            command: "systemctl restart redis".into(),
        }
    }

    #[test]
    fn y_confirms_outside_prod() {
        let mut c = ConfirmAction::new(run(), false);
        assert_eq!(c.key(KeyCode::Enter), Answer::Waiting);
        match c.key(KeyCode::Char('y')) {
            Answer::Confirmed(done) => assert_eq!(done.pending(), &run()),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            ConfirmAction::new(run(), false).key(KeyCode::Esc),
            Answer::Cancelled
        );
    }

    #[test]
    fn prod_needs_the_target_typed() {
        let mut c = ConfirmAction::new(run(), true);
        assert_eq!(
            c.key(KeyCode::Char('y')),
            Answer::Waiting,
            "y is just a letter"
        );
        assert_eq!(
            c.key(KeyCode::Enter),
            Answer::Waiting,
            "\"y\" is not the name"
        );
        c.key(KeyCode::Backspace);
        for ch in "redis-01".chars() {
            c.key(KeyCode::Char(ch));
        }
        assert!(matches!(c.key(KeyCode::Enter), Answer::Confirmed(_)));
    }
}
