//! Which top-level option keys each agent type takes, so no option is silently kept and
//! ignored: a key the type implements is used; a key Huginn's type documents that muninn
//! does not implement is accepted but reported (a warning on save, a problem on import);
//! any other key is refused, naming the options the type does take.

use serde_json::Value;

use super::{Kind, KindInfo, OptionError};

/// A type's keys: implemented (Huginn's and muninn's own) and Huginn's not implemented.
struct Keys {
    kind: Kind,
    implemented: &'static [&'static str],
    not_implemented: &'static [&'static str],
}

static KEYS: &[Keys] = &[
    Keys {
        kind: Kind::Webhook,
        implemented: &[
            "secret",
            "expected_receive_period_in_days",
            "payload_path",
            "event_headers",
            "event_headers_key",
            "event_headers_style",
            "verbs",
            "response",
            "response_headers",
            "code",
            "recaptcha_secret",
            "recaptcha_send_remote_addr",
            "score_threshold",
            // muninn's own
            "allowed_ips",
            "max_body_bytes",
            "rate_limit",
            "signature",
        ],
        not_implemented: &[],
    },
    Keys {
        kind: Kind::EventFormatting,
        implemented: &["instructions", "matchers", "mode", "skip_created_at"],
        not_implemented: &[],
    },
    Keys {
        kind: Kind::Trigger,
        implemented: &[
            "rules",
            "message",
            "keep_event",
            "must_match",
            "expected_receive_period_in_days",
        ],
        not_implemented: &[],
    },
    Keys {
        kind: Kind::DeDuplication,
        implemented: &["property", "lookback", "expected_update_period_in_days"],
        not_implemented: &[],
    },
    Keys {
        kind: Kind::Delay,
        implemented: &[
            "max_events",
            "keep",
            "max_emitted_events",
            "emit_interval",
            "expected_receive_period_in_days",
        ],
        not_implemented: &["events_order"],
    },
    Keys {
        kind: Kind::ManualEvent,
        implemented: &["payload"],
        not_implemented: &[],
    },
    Keys {
        kind: Kind::Scheduler,
        implemented: &["action", "schedule", "drop_pending_events"],
        not_implemented: &["configure_options"],
    },
    Keys {
        kind: Kind::Rss,
        implemented: &[
            "url",
            "include_feed_info",
            "clean",
            "expected_update_period_in_days",
            "max_events_per_run",
            "remembered_id_count",
            "events_order",
            "include_sort_info",
            "headers",
            "basic_auth",
            "user_agent",
        ],
        not_implemented: &[
            "disable_ssl_verification",
            "disable_url_encoding",
            "disable_redirect_follow",
            "force_encoding",
            "proxy",
            "unzip",
        ],
    },
    Keys {
        kind: Kind::Post,
        implemented: &[
            "post_url",
            "expected_receive_period_in_days",
            "content_type",
            "method",
            "payload",
            "headers",
            "emit_events",
            "output_mode",
            "no_merge",
            "parse_body",
            "basic_auth",
            // muninn's own
            "retry_count",
            "retry_delay",
            "timeout",
        ],
        not_implemented: &[
            "event_headers",
            "event_headers_key",
            "event_headers_style",
            "upload_key",
            "disable_ssl_verification",
            "disable_url_encoding",
            "disable_redirect_follow",
            "force_encoding",
            "user_agent",
            "proxy",
            "unzip",
        ],
    },
    Keys {
        kind: Kind::DataOutput,
        implemented: &[
            "secrets",
            "expected_receive_period_in_days",
            "template",
            "events_to_show",
            "ttl",
            "ns_dc",
            "ns_media",
            "ns_itunes",
            "rss_content_type",
            "response_headers",
            "push_hubs",
            "events_order",
            "events_list_order",
        ],
        not_implemented: &[],
    },
    Keys {
        kind: Kind::Email,
        implemented: EMAIL_KEYS,
        not_implemented: &[],
    },
    Keys {
        kind: Kind::EmailDigest,
        implemented: EMAIL_KEYS,
        not_implemented: &[],
    },
    Keys {
        kind: Kind::Digest,
        implemented: &[
            "message",
            "retained_events",
            "expected_receive_period_in_days",
        ],
        not_implemented: &[],
    },
    Keys {
        kind: Kind::Website,
        implemented: &[
            "url",
            "url_from_event",
            "data_from_event",
            "type",
            "mode",
            "extract",
            "template",
            "use_namespaces",
            "expected_update_period_in_days",
            "uniqueness_look_back",
            "http_success_codes",
            "headers",
            "basic_auth",
            "user_agent",
            // Checked, and refused when they ask what muninn cannot do (see website::options).
            "force_encoding",
            "unzip",
            "disable_ssl_verification",
            "proxy",
        ],
        not_implemented: &[
            "events_order",
            "disable_url_encoding",
            "disable_redirect_follow",
        ],
    },
    Keys {
        kind: Kind::Jq,
        implemented: &["filter", "variables"],
        not_implemented: &[],
    },
    Keys {
        kind: Kind::JsonParse,
        implemented: &["data", "data_key", "mode"],
        not_implemented: &[],
    },
    Keys {
        kind: Kind::ChangeDetector,
        implemented: &["property", "expected_update_period_in_days"],
        not_implemented: &[],
    },
    Keys {
        kind: Kind::AttributeDifference,
        implemented: &[
            "path",
            "output",
            "method",
            "decimal_precision",
            "expected_update_period_in_days",
        ],
        not_implemented: &[],
    },
    Keys {
        kind: Kind::GapDetector,
        implemented: &["value_path", "message", "window_duration_in_days"],
        not_implemented: &[],
    },
    Keys {
        kind: Kind::Commander,
        implemented: &["action", "drop_pending_events"],
        not_implemented: &["configure_options"],
    },
    Keys {
        kind: Kind::PeakDetector,
        implemented: &[
            "value_path",
            "group_by_path",
            "message",
            "min_events",
            "expected_receive_period_in_days",
            "window_duration_in_days",
            "min_peak_spacing_in_days",
            "std_multiple",
            "search_url",
            "window_duration",
            "peak_spacing",
        ],
        not_implemented: &[],
    },
    Keys {
        kind: Kind::Csv,
        implemented: &[
            "mode",
            "separator",
            "use_fields",
            "output",
            "with_header",
            "data_path",
            "data_key",
        ],
        not_implemented: &["require_signed_file_pointer"],
    },
    Keys {
        kind: Kind::Slack,
        implemented: &[
            "webhook_url",
            "channel",
            "username",
            "message",
            "icon",
            "unfurl_links",
            "attachments",
            "blocks",
            // Huginn's old-style webhook, still accepted
            "team_name",
            "auth_token",
            "webhook",
        ],
        not_implemented: &[],
    },
    Keys {
        kind: Kind::Pushover,
        implemented: &[
            "token",
            "user",
            "message",
            "device",
            "title",
            "url",
            "url_title",
            "priority",
            "timestamp",
            "sound",
            "retry",
            "expire",
            "ttl",
            "html",
            "monospace",
            "expected_receive_period_in_days",
        ],
        not_implemented: &[],
    },
    Keys {
        kind: Kind::Weather,
        implemented: &[
            "location",
            "zipcode",
            "api_key",
            "which_day",
            "language",
            "expected_update_period_in_days",
            "service",
        ],
        not_implemented: &[],
    },
    Keys {
        kind: Kind::PhantomJsCloud,
        implemented: &[
            "mode",
            "api_key",
            "url",
            "render_type",
            "output_as_json",
            "ignore_images",
            "user_agent",
            "wait_interval",
            // Huginn's options form writes these beside its boolean fields; Huginn
            // reads the fields themselves, and so does muninn.
            "output_as_json_radio",
            "ignore_images_radio",
        ],
        not_implemented: &[],
    },
    Keys {
        kind: Kind::GithubNotifications,
        implemented: &["access_token", "events", "last_modified"],
        not_implemented: &[],
    },
    Keys {
        kind: Kind::ImapFolder,
        implemented: &[
            "expected_update_period_in_days",
            "host",
            "port",
            "ssl",
            "username",
            "password",
            "folders",
            "conditions",
            "mime_types",
            "mark_as_read",
            "delete",
            "include_raw_mail",
            "event_headers",
            "event_headers_key",
            "event_headers_style",
        ],
        not_implemented: &[],
    },
    Keys {
        kind: Kind::LiquidOutput,
        implemented: &[
            "secret",
            "expected_receive_period_in_days",
            "content",
            "line_break_is_lf",
            "mime_type",
            "response_headers",
            "mode",
            "event_limit",
        ],
        not_implemented: &[],
    },
    Keys {
        kind: Kind::LocalFile,
        implemented: &["mode", "watch", "append", "path", "data"],
        not_implemented: &[],
    },
    Keys {
        kind: Kind::ReadFile,
        implemented: &["data_key"],
        // muninn's file pointers are not signed; reads are confined to `[files]` instead.
        not_implemented: &["require_signed_file_pointer"],
    },
    Keys {
        kind: Kind::HttpStatus,
        implemented: &[
            "url",
            "disable_redirect_follow",
            "changes_only",
            "headers_to_save",
        ],
        // Huginn's WebRequestConcern options, not taken by muninn's http_status yet.
        not_implemented: &[
            "headers",
            "basic_auth",
            "user_agent",
            "disable_ssl_verification",
            "proxy",
            "force_encoding",
            "unzip",
        ],
    },
    Keys {
        kind: Kind::ShellCommand,
        implemented: &[
            "command",
            "path",
            "stdin",
            "expected_update_period_in_days",
            "suppress_on_failure",
            "suppress_on_empty_output",
            // Always as `true` would: a command never sees the hub's environment.
            "unbundle",
        ],
        not_implemented: &[],
    },
    Keys {
        kind: Kind::JavaScript,
        implemented: &[
            "code",
            "language",
            "expected_update_period_in_days",
            "expected_receive_period_in_days",
        ],
        not_implemented: &[],
    },
    Keys {
        kind: Kind::KeyValueStore,
        implemented: &["key", "value", "variable", "max_keys"],
        not_implemented: &[],
    },
    Keys {
        kind: Kind::Sentiment,
        implemented: &["content", "expected_receive_period_in_days"],
        not_implemented: &[],
    },
    Keys {
        kind: Kind::Jabber,
        implemented: &[
            "jabber_server",
            "jabber_port",
            "jabber_sender",
            "jabber_receiver",
            "jabber_password",
            "message",
            "expected_receive_period_in_days",
            "connect_to_receiver",
            // What Huginn's options form writes beside the boolean; the boolean rules.
            "connect_to_receiver_radio",
        ],
        not_implemented: &[],
    },
];

/// Types whose options are the user's own as well as the type's: any other key is
/// kept for the code to read (java_script's `this.options('make_event')`).
const OPEN: &[Kind] = &[Kind::JavaScript];

/// The email family's options (Huginn's EmailConcern and SystemMailer).
const EMAIL_KEYS: &[&str] = &[
    "subject",
    "headline",
    "body",
    "from",
    "content_type",
    "recipients",
    "expected_receive_period_in_days",
];

/// Keys every type takes: the event type its events are given (muninn's own).
const COMMON: &[&str] = &["event_type"];

fn keys_of(kind: &KindInfo) -> Option<&'static Keys> {
    KEYS.iter().find(|k| k.kind == kind.kind)
}

/// The option keys of `options` that Huginn's type documents and muninn does not
/// implement, in the order they appear.
pub fn not_implemented(kind: &KindInfo, options: &Value) -> Vec<String> {
    let (Some(keys), Some(map)) = (keys_of(kind), options.as_object()) else {
        return Vec::new();
    };
    if OPEN.contains(&kind.kind) {
        return Vec::new();
    }
    map.keys()
        .filter(|k| keys.not_implemented.contains(&k.as_str()))
        .cloned()
        .collect()
}

/// The keys of `options` the type does not take at all (neither implemented nor
/// Huginn's), in the order they appear.
pub fn unknown(kind: &KindInfo, options: &Value) -> Vec<String> {
    let (Some(keys), Some(map)) = (keys_of(kind), options.as_object()) else {
        return Vec::new();
    };
    if OPEN.contains(&kind.kind) {
        return Vec::new();
    }
    map.keys()
        .filter(|k| {
            let k = k.as_str();
            !keys.implemented.contains(&k)
                && !keys.not_implemented.contains(&k)
                && !COMMON.contains(&k)
        })
        .cloned()
        .collect()
}

/// Why a key is refused: it is no option of the type.
fn unknown_key(kind: &KindInfo) -> String {
    let implemented = keys_of(kind).map(|k| k.implemented.join(", "));
    format!(
        "is not an option of a {} agent; its options are: {}",
        kind.name(),
        implemented.unwrap_or_default()
    )
}

/// Refuses a key the type does not take at all (neither implemented nor Huginn's).
pub fn check_known(kind: &KindInfo, options: &Value) -> Result<(), OptionError> {
    match unknown(kind, options).first() {
        Some(k) => Err(OptionError::new(k, unknown_key(kind))),
        None => Ok(()),
    }
}

/// Notes for the keys of an imported agent's options that its type does not take.
/// Huginn keeps such keys (scenario authors leave notes like `score` or `description`
/// in options) and so does an import: the agent runs, and the note says the key has no
/// effect. A save through the API refuses them ([`validate_for_save`]).
pub fn unknown_notes(kind: &KindInfo, agent: &str, options: &Value) -> Vec<String> {
    unknown(kind, options)
        .iter()
        .map(|k| {
            format!(
                "option '{k}' of agent '{agent}' {}; it is kept, as Huginn keeps it, and has no effect",
                unknown_key(kind)
            )
        })
        .collect()
}

/// What saving an agent through the API checks: the type's own validation and its keys.
/// Enabling and importing check only the type's validation (see [`unknown_notes`]).
pub fn validate_for_save(kind: &KindInfo, options: &Value) -> Result<(), OptionError> {
    kind.validate(options)?;
    check_known(kind, options)
}

/// Warnings for a saved agent's options that are kept but have no effect.
pub fn warnings(kind: &KindInfo, options: &Value) -> Vec<String> {
    not_implemented(kind, options)
        .into_iter()
        .map(|o| {
            format!(
                "option \"{o}\" is a Huginn option muninn does not implement; it is kept and has no effect"
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::{KINDS, kind};
    use serde_json::json;

    #[test]
    fn every_type_has_its_keys_listed() {
        for k in KINDS {
            assert!(
                keys_of(k).is_some(),
                "{} has no option keys listed",
                k.name()
            );
        }
    }

    #[test]
    fn unknown_keys_are_refused_and_huginn_keys_reported() {
        let rss = kind("rss").unwrap();
        let opts = json!({"url": "http://x/f", "force_encoding": "utf-8", "clean": true});
        assert!(validate_for_save(rss, &opts).is_ok());
        assert_eq!(not_implemented(rss, &opts), ["force_encoding"]);
        let e = validate_for_save(rss, &json!({"url": "http://x/f", "colour": 1})).unwrap_err();
        assert_eq!(e.option, "colour");
        assert!(e.problem.contains("not an option of a rss agent"), "{e}");
    }
}
