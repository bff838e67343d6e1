//! `silta admin ...`: the relay's Admin service. Names and device ids come from participants'
//! certificates and bundles: every cell is printed through [`print_table`] (made printable).

use silta_client::{ClientConfig, admin::AdminClient, text::printable_line, times::rfc3339};

use crate::{Failure, cli::AdminCommand, output::print_table};

pub(crate) async fn run(config: &ClientConfig, command: AdminCommand) -> Result<(), Failure> {
    // Checked here too, so a mistyped name is a usage error before anything is sent or logged.
    let principal = |p: &str| -> Result<String, Failure> {
        p.parse::<silta_certs::Principal>()
            .map(|p| p.to_string())
            .map_err(|e| Failure::usage(format!("{}: {e}", printable_line(p))))
    };
    let reason = |r: &str| -> Result<String, Failure> {
        let r = r.trim();
        if r.is_empty() {
            return Err(Failure::usage(
                "--reason is required (it is recorded in the delivery log)",
            ));
        }
        silta_proto::purpose::check_note(r)
            .map_err(|e| Failure::usage(e.replace("purpose note", "reason")))?;
        Ok(r.to_owned())
    };
    match command {
        AdminCommand::Principals { role, reason } => {
            let admin = AdminClient::connect(config).await?;
            let list = admin
                .principals(role.as_deref().unwrap_or(""), reason.trim())
                .await?;
            let rows: Vec<[String; 8]> = list
                .iter()
                .map(|p| {
                    let devices: Vec<String> = p
                        .devices
                        .iter()
                        .map(|d| {
                            if d.retired {
                                format!("{} (retired)", d.device_id)
                            } else {
                                d.device_id.clone()
                            }
                        })
                        .collect();
                    [
                        p.principal.clone(),
                        if p.disabled {
                            format!("DISABLED {}", p.disabled_reason)
                        } else {
                            "enabled".into()
                        },
                        rfc3339(p.first_seen.as_ref()),
                        rfc3339(p.last_seen.as_ref()),
                        p.certificate_serial.clone(),
                        rfc3339(p.certificate_not_after.as_ref()),
                        format!("{}/{}", p.pending, p.pending_limit),
                        format!(
                            "{}/{} {}",
                            p.device_count,
                            p.device_limit,
                            devices.join(",")
                        ),
                    ]
                })
                .collect();
            print_table(
                &[
                    "PRINCIPAL",
                    "STATE",
                    "FIRST SEEN",
                    "LAST SEEN",
                    "CERT SERIAL",
                    "CERT EXPIRES",
                    "PENDING",
                    "DEVICES",
                ],
                &rows,
            );
            Ok(())
        }
        AdminCommand::Expiring { days, reason } => {
            let admin = AdminClient::connect(config).await?;
            let r = admin.expiring(days, reason.trim()).await?;
            if r.items.is_empty() {
                println!("nothing expires within {} days", r.within_days);
                return Ok(());
            }
            println!("expiring within {} days:", r.within_days);
            let rows: Vec<[String; 5]> = r
                .items
                .iter()
                .map(|i| {
                    [
                        i.what.clone(),
                        i.subject.clone(),
                        i.serial.clone(),
                        rfc3339(i.expires_at.as_ref()),
                        if i.expired {
                            "EXPIRED".into()
                        } else {
                            String::new()
                        },
                    ]
                })
                .collect();
            print_table(&["WHAT", "SUBJECT", "SERIAL", "EXPIRES", ""], &rows);
            Ok(())
        }
        AdminCommand::Disable {
            principal: p,
            reason: r,
        } => {
            let (p, r) = (principal(&p)?, reason(&r)?);
            let admin = AdminClient::connect(config).await?;
            let out = admin.disable(&p, &r).await?;
            println!(
                "disabled {p} (log index {}); {} pending message(s) reported undeliverable to their senders",
                out.log_index, out.undeliverable
            );
            Ok(())
        }
        AdminCommand::Enable {
            principal: p,
            reason: r,
        } => {
            let (p, r) = (principal(&p)?, reason(&r)?);
            let admin = AdminClient::connect(config).await?;
            let out = admin.enable(&p, &r).await?;
            println!("enabled {p} (log index {})", out.log_index);
            Ok(())
        }
        AdminCommand::RetireDevices {
            principal: p,
            devices,
            reason: r,
        } => {
            let (p, r) = (principal(&p)?, reason(&r)?);
            let admin = AdminClient::connect(config).await?;
            let out = admin.retire_devices(&p, &devices, &r).await?;
            if out.retired.is_empty() {
                println!("{p}: no device to retire (already retired)");
            } else {
                let retired: Vec<String> = out.retired.iter().map(|d| printable_line(d)).collect();
                println!(
                    "retired {p} device(s) {} (log index {})",
                    retired.join(", "),
                    out.log_index
                );
            }
            println!(
                "{} pending message(s) reported undeliverable to their senders",
                out.undeliverable
            );
            Ok(())
        }
    }
}
