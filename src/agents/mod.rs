//! Agents: the catalog of agent types, their options, and the behaviour each type
//! gives an `AgentActor`. One file per type; this module holds what they share.
// One idea: the catalog of agent types; `KINDS` alone is a ~590-line table with one
// entry per type (appended to as types are added), the rest is what every entry takes.

pub mod actor;
pub mod attribute_difference;
pub mod basic_auth;
pub mod change_detector;
pub mod commander;
pub mod csv;
pub mod data_output;
pub mod de_duplication;
pub mod delay;
pub mod dial;
pub mod digest;
pub mod drops;
pub mod email;
pub mod email_digest;
pub mod event_formatting;
pub mod fanout;
pub mod files;
pub mod gap_detector;
pub mod github_notifications;
pub mod health;
pub mod http_status;
pub mod imap_folder;
pub mod insecure;
pub mod jabber;
pub mod java_script;
pub mod jq;
pub mod json_parse;
pub mod key_value_store;
pub mod liquid_output;
pub mod listen;
pub mod local_file;
pub mod manual_event;
pub mod option_keys;
pub mod peak_detector;
pub mod phantom_js_cloud;
pub mod post;
pub mod pushover;
pub mod read_file;
pub mod request_headers;
pub mod rss;
pub mod rss_entry;
pub mod rss_feed;
pub mod rss_feed_info;
pub mod rss_xml;
pub mod scenario;
pub mod scenario_problems;
pub mod schedule;
pub mod scheduler;
pub mod sentiment;
pub mod service;
pub mod shell_command;
pub mod slack;
pub mod task;
pub mod trigger;
pub mod weather;
pub mod webhook;
pub mod website;

pub use crate::agent_kind::Kind;
/// The option helpers every agent type reads its options with (a leaf: see `crate::options`).
pub use crate::options::{
    OptionError, boolify, emitted_event_type, opt_bool, opt_number, opt_str, type_name,
};
pub use health::Health;

use std::sync::Arc;

use serde_json::Value;

use crate::ids::EventId;
use crate::store::agent_logs::{LEVEL_ERROR, LEVEL_INFO, NewLog};
use crate::store::agents::AgentRow;
use crate::store::events::EventRow;
use crate::template::liquid::CredentialSource;

/// What the hub knows about an agent type before it has an agent of it.
#[derive(Debug)]
pub struct KindInfo {
    /// Which type this is; its name (`webhook`) is the one the API uses.
    pub kind: Kind,
    /// Huginn's class name (`Agents::WebhookAgent`), accepted as an alias.
    pub huginn: &'static str,
    pub description: &'static str,
    pub can_receive_events: bool,
    pub can_create_events: bool,
    pub can_be_scheduled: bool,
    pub takes_web_requests: bool,
    /// Controls other agents through control links (Huginn's SchedulerAgent).
    pub can_control_other_agents: bool,
    /// The schedule a schedulable agent gets when none is given.
    pub default_schedule: Option<&'static str>,
    /// How `working` is decided for this type.
    pub health: Health,
    validate: fn(&Value) -> Result<(), OptionError>,
    build: fn(&Value) -> Result<Box<dyn Behavior>, OptionError>,
}

impl KindInfo {
    pub fn validate(&self, options: &Value) -> Result<(), OptionError> {
        if !options.is_object() {
            return Err(OptionError::new("options", "must be a JSON object"));
        }
        (self.validate)(options)
    }

    pub fn build(&self, options: &Value) -> Result<Box<dyn Behavior>, OptionError> {
        (self.build)(options)
    }

    /// muninn's name for the type, used in the API and stored in rows (`webhook`).
    pub fn name(&self) -> &'static str {
        self.kind.name()
    }

    /// Serves a feed (RSS/JSON) at its web-request URL: gets a `FeedActor`.
    pub fn serves_feed(&self) -> bool {
        self.kind == Kind::DataOutput
    }

    /// Answers its web-request URL with a rendered Liquid page (`liquid_output`).
    pub fn serves_page(&self) -> bool {
        self.kind == Kind::LiquidOutput
    }

    /// Takes events posted to it through the API (`POST /api/agents/{id}/events`).
    pub fn takes_posted_events(&self) -> bool {
        self.kind == Kind::ManualEvent
    }
}

/// The URLs an agent with these options fetches or posts to, by option name: what the
/// target guard checks when the agent is saved.
pub fn target_urls(kind: &KindInfo, options: &Value) -> Vec<(&'static str, String)> {
    let field = match kind.kind {
        Kind::Post => "post_url",
        Kind::Rss | Kind::Website | Kind::HttpStatus => "url",
        Kind::Slack => "webhook_url",
        _ => return Vec::new(),
    };
    // A templated URL is known only when it is rendered; the delivery engine's guard
    // checks it then, before each request.
    let urls: Vec<&str> = match options.get(field) {
        Some(Value::String(u)) => vec![u.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    urls.into_iter()
        .filter(|u| !crate::template::liquid::has_markup(u))
        .map(|u| (field, u.trim().to_string()))
        .collect()
}

/// Why an agent of a type muninn has cannot run at all, whatever the user changes
/// short of the type's choice of service: its options name a third-party API that no
/// longer exists (a weather agent on Weather Underground). A scenario import leaves
/// such an agent out, as it does an agent of a type muninn does not have.
pub fn retired(kind: &KindInfo, options: &Value) -> Option<String> {
    match kind.kind {
        Kind::Weather => {
            weather::retired_service(options).map(|why| format!("option \"service\" {why}"))
        }
        _ => None,
    }
}

/// One entry per `Kind` (a new type: its variant in `agent_kind.rs`, its entry appended
/// here).
pub static KINDS: &[KindInfo] = &[
    KindInfo {
        kind: Kind::Webhook,
        huginn: "Agents::WebhookAgent",
        description: "Creates events from HTTP requests to its web-request URL.",
        can_receive_events: false,
        can_create_events: true,
        can_be_scheduled: false,
        takes_web_requests: true,
        can_control_other_agents: false,
        default_schedule: None,
        health: Health::Created {
            option: "expected_receive_period_in_days",
            default_days: 1.0,
        },
        validate: webhook::validate,
        build: webhook::build,
    },
    KindInfo {
        kind: Kind::EventFormatting,
        huginn: "Agents::EventFormattingAgent",
        description: "Reshapes each received event with templates.",
        can_receive_events: true,
        can_create_events: true,
        can_be_scheduled: false,
        takes_web_requests: false,
        can_control_other_agents: false,
        default_schedule: None,
        health: Health::NoRecentErrors,
        validate: event_formatting::validate,
        build: event_formatting::build,
    },
    KindInfo {
        kind: Kind::Trigger,
        huginn: "Agents::TriggerAgent",
        description: "Emits an event when received events match its rules.",
        can_receive_events: true,
        can_create_events: true,
        can_be_scheduled: false,
        takes_web_requests: false,
        can_control_other_agents: false,
        default_schedule: None,
        health: Health::Received {
            option: "expected_receive_period_in_days",
            default_days: 2.0,
        },
        validate: trigger::validate,
        build: trigger::build,
    },
    KindInfo {
        kind: Kind::DeDuplication,
        huginn: "Agents::DeDuplicationAgent",
        description: "Passes on events it has not seen before (by a property), drops repeats.",
        can_receive_events: true,
        can_create_events: true,
        can_be_scheduled: false,
        takes_web_requests: false,
        can_control_other_agents: false,
        default_schedule: None,
        health: Health::Created {
            option: "expected_update_period_in_days",
            default_days: 1.0,
        },
        validate: de_duplication::validate,
        build: de_duplication::build,
    },
    KindInfo {
        kind: Kind::Delay,
        huginn: "Agents::DelayAgent",
        description: "Holds received events and releases them on its schedule or when run.",
        can_receive_events: true,
        can_create_events: true,
        can_be_scheduled: true,
        takes_web_requests: false,
        can_control_other_agents: false,
        default_schedule: Some("every_12h"),
        health: Health::Received {
            option: "expected_receive_period_in_days",
            default_days: 10.0,
        },
        validate: delay::validate,
        build: delay::build,
    },
    KindInfo {
        kind: Kind::ManualEvent,
        huginn: "Agents::ManualEventAgent",
        description: "Emits the payload posted to POST /api/agents/{id}/events.",
        can_receive_events: false,
        can_create_events: true,
        can_be_scheduled: false,
        takes_web_requests: false,
        can_control_other_agents: false,
        default_schedule: None,
        health: Health::Always,
        validate: manual_event::validate,
        build: manual_event::build,
    },
    KindInfo {
        kind: Kind::Scheduler,
        huginn: "Agents::SchedulerAgent",
        description: "Runs, enables or disables its control targets on a cron schedule.",
        can_receive_events: false,
        can_create_events: false,
        can_be_scheduled: false,
        takes_web_requests: false,
        can_control_other_agents: true,
        default_schedule: None,
        health: Health::Always,
        validate: scheduler::validate,
        build: scheduler::build,
    },
    KindInfo {
        kind: Kind::Rss,
        huginn: "Agents::RssAgent",
        description: "Polls RSS and Atom feeds and emits each new entry.",
        can_receive_events: false,
        can_create_events: true,
        can_be_scheduled: true,
        takes_web_requests: false,
        can_control_other_agents: false,
        default_schedule: Some("every_1d"),
        health: Health::Created {
            option: "expected_update_period_in_days",
            default_days: 10.0,
        },
        validate: rss::validate,
        build: rss::build,
    },
    KindInfo {
        kind: Kind::Post,
        huginn: "Agents::PostAgent",
        description: "Sends each received event to a URL, through the delivery engine (retries, logs).",
        can_receive_events: true,
        can_create_events: true,
        can_be_scheduled: false,
        takes_web_requests: false,
        can_control_other_agents: false,
        default_schedule: None,
        health: Health::NoRecentErrors,
        validate: post::validate,
        build: post::build,
    },
    KindInfo {
        kind: Kind::DataOutput,
        huginn: "Agents::DataOutputAgent",
        description: "Publishes the events it receives as an RSS 2.0 and a JSON feed.",
        can_receive_events: true,
        can_create_events: false,
        can_be_scheduled: false,
        takes_web_requests: false,
        can_control_other_agents: false,
        default_schedule: None,
        health: Health::Received {
            option: "expected_receive_period_in_days",
            default_days: 2.0,
        },
        validate: data_output::validate,
        build: data_output::build,
    },
    KindInfo {
        kind: Kind::Email,
        huginn: "Agents::EmailAgent",
        description: "Sends each received event as a mail at once (SMTP from [smtp]), with retries.",
        can_receive_events: true,
        can_create_events: false,
        can_be_scheduled: false,
        takes_web_requests: false,
        can_control_other_agents: false,
        default_schedule: None,
        health: Health::Received {
            option: "expected_receive_period_in_days",
            default_days: 2.0,
        },
        validate: email::validate,
        build: email::build,
    },
    KindInfo {
        kind: Kind::EmailDigest,
        huginn: "Agents::EmailDigestAgent",
        description: "Collects received events and mails them all in one digest when it runs.",
        can_receive_events: true,
        can_create_events: false,
        can_be_scheduled: true,
        takes_web_requests: false,
        can_control_other_agents: false,
        default_schedule: Some("5am"),
        health: Health::Received {
            option: "expected_receive_period_in_days",
            default_days: 2.0,
        },
        validate: email_digest::validate,
        build: email_digest::build,
    },
    KindInfo {
        kind: Kind::Digest,
        huginn: "Agents::DigestAgent",
        description: "Collects received events and emits them as one event with a message when it runs.",
        can_receive_events: true,
        can_create_events: true,
        can_be_scheduled: true,
        takes_web_requests: false,
        can_control_other_agents: false,
        default_schedule: Some("6am"),
        health: Health::Received {
            option: "expected_receive_period_in_days",
            default_days: 2.0,
        },
        validate: digest::validate,
        build: digest::build,
    },
    KindInfo {
        kind: Kind::Website,
        huginn: "Agents::WebsiteAgent",
        description: "Scrapes web pages, XML, JSON or text (fetched, or from events) into events.",
        can_receive_events: true,
        can_create_events: true,
        can_be_scheduled: true,
        takes_web_requests: false,
        can_control_other_agents: false,
        default_schedule: Some("every_12h"),
        health: Health::Created {
            option: "expected_update_period_in_days",
            default_days: 2.0,
        },
        validate: website::validate,
        build: website::build,
    },
    KindInfo {
        kind: Kind::Jq,
        huginn: "Agents::JqAgent",
        description: "Runs a jq filter on each received event and emits each object it yields.",
        can_receive_events: true,
        can_create_events: true,
        can_be_scheduled: false,
        takes_web_requests: false,
        can_control_other_agents: false,
        default_schedule: None,
        health: Health::NoRecentErrors,
        validate: jq::validate,
        build: jq::build,
    },
    KindInfo {
        kind: Kind::JsonParse,
        huginn: "Agents::JsonParseAgent",
        description: "Parses JSON text from each received event and emits it under data_key.",
        can_receive_events: true,
        can_create_events: true,
        can_be_scheduled: false,
        takes_web_requests: false,
        can_control_other_agents: false,
        default_schedule: None,
        health: Health::NoRecentErrors,
        validate: json_parse::validate,
        build: json_parse::build,
    },
    KindInfo {
        kind: Kind::ChangeDetector,
        huginn: "Agents::ChangeDetectorAgent",
        description: "Passes on a received event when its rendered property differs from the last one.",
        can_receive_events: true,
        can_create_events: true,
        can_be_scheduled: false,
        takes_web_requests: false,
        can_control_other_agents: false,
        default_schedule: None,
        health: Health::Created {
            option: "expected_update_period_in_days",
            default_days: 1.0,
        },
        validate: change_detector::validate,
        build: change_detector::build,
    },
    KindInfo {
        kind: Kind::AttributeDifference,
        huginn: "Agents::AttributeDifferenceAgent",
        description: "Adds to each received event the difference of a value from the previous event's.",
        can_receive_events: true,
        can_create_events: true,
        can_be_scheduled: false,
        takes_web_requests: false,
        can_control_other_agents: false,
        default_schedule: None,
        health: Health::Created {
            option: "expected_update_period_in_days",
            default_days: 1.0,
        },
        validate: attribute_difference::validate,
        build: attribute_difference::build,
    },
    KindInfo {
        kind: Kind::GapDetector,
        huginn: "Agents::GapDetectorAgent",
        description: "Emits a message when no event with a value arrived within a window of days.",
        can_receive_events: true,
        can_create_events: true,
        can_be_scheduled: true,
        takes_web_requests: false,
        can_control_other_agents: false,
        default_schedule: Some("every_10m"),
        health: Health::Always,
        validate: gap_detector::validate,
        build: gap_detector::build,
    },
    KindInfo {
        kind: Kind::Commander,
        huginn: "Agents::CommanderAgent",
        description: "Runs, enables or disables its control targets when run or when it receives an event.",
        can_receive_events: true,
        can_create_events: false,
        can_be_scheduled: true,
        takes_web_requests: false,
        can_control_other_agents: true,
        default_schedule: None,
        health: Health::Always,
        validate: commander::validate,
        build: commander::build,
    },
    KindInfo {
        kind: Kind::PeakDetector,
        huginn: "Agents::PeakDetectorAgent",
        description: "Emits a message when a value rises far above its recent mean.",
        can_receive_events: true,
        can_create_events: true,
        can_be_scheduled: false,
        takes_web_requests: false,
        can_control_other_agents: false,
        default_schedule: None,
        health: Health::Received {
            option: "expected_receive_period_in_days",
            default_days: 2.0,
        },
        validate: peak_detector::validate,
        build: peak_detector::build,
    },
    KindInfo {
        kind: Kind::Csv,
        huginn: "Agents::CsvAgent",
        description: "Parses CSV text from received events into rows, or writes received data as CSV.",
        can_receive_events: true,
        can_create_events: true,
        can_be_scheduled: false,
        takes_web_requests: false,
        can_control_other_agents: false,
        default_schedule: None,
        health: Health::NoRecentErrors,
        validate: csv::validate,
        build: csv::build,
    },
    KindInfo {
        kind: Kind::Slack,
        huginn: "Agents::SlackAgent",
        description: "Posts each received event to a Slack incoming webhook, through the delivery engine.",
        can_receive_events: true,
        can_create_events: false,
        can_be_scheduled: false,
        takes_web_requests: false,
        can_control_other_agents: false,
        default_schedule: None,
        health: Health::ReceivedWithoutError,
        validate: slack::validate,
        build: slack::build,
    },
    KindInfo {
        kind: Kind::Pushover,
        huginn: "Agents::PushoverAgent",
        description: "Sends each received event as a Pushover notification, through the delivery engine.",
        can_receive_events: true,
        can_create_events: false,
        can_be_scheduled: false,
        takes_web_requests: false,
        can_control_other_agents: false,
        default_schedule: None,
        health: Health::Received {
            option: "expected_receive_period_in_days",
            default_days: 1.0,
        },
        validate: pushover::validate,
        build: pushover::build,
    },
    KindInfo {
        kind: Kind::Weather,
        huginn: "Agents::WeatherAgent",
        description: "Emits the day's forecast for a location from Pirate Weather on its schedule.",
        can_receive_events: false,
        can_create_events: true,
        can_be_scheduled: true,
        takes_web_requests: false,
        can_control_other_agents: false,
        default_schedule: Some("8pm"),
        health: Health::Created {
            option: "expected_update_period_in_days",
            default_days: 2.0,
        },
        validate: weather::validate,
        build: weather::build,
    },
    KindInfo {
        kind: Kind::PhantomJsCloud,
        huginn: "Agents::PhantomJsCloudAgent",
        description: "Emits a phantomjscloud.com URL that renders a page, on its schedule or per event.",
        can_receive_events: true,
        can_create_events: true,
        can_be_scheduled: true,
        takes_web_requests: false,
        can_control_other_agents: false,
        default_schedule: Some("every_12h"),
        health: Health::NoRecentErrors,
        validate: phantom_js_cloud::validate,
        build: phantom_js_cloud::build,
    },
    KindInfo {
        kind: Kind::GithubNotifications,
        huginn: "Agents::GithubNotificationsAgent",
        description: "Emits the user's new GitHub notifications on its schedule.",
        can_receive_events: false,
        can_create_events: true,
        can_be_scheduled: true,
        takes_web_requests: false,
        can_control_other_agents: false,
        default_schedule: Some("every_10m"),
        health: Health::NoRecentErrors,
        validate: github_notifications::validate,
        build: github_notifications::build,
    },
    KindInfo {
        kind: Kind::ImapFolder,
        huginn: "Agents::ImapFolderAgent",
        description: "Checks IMAP folders and emits an event for each new mail that matches its conditions.",
        can_receive_events: false,
        can_create_events: true,
        can_be_scheduled: true,
        takes_web_requests: false,
        can_control_other_agents: false,
        default_schedule: Some("every_30m"),
        health: Health::Created {
            option: "expected_update_period_in_days",
            default_days: 1.0,
        },
        validate: imap_folder::validate,
        build: imap_folder::build,
    },
    KindInfo {
        kind: Kind::LiquidOutput,
        huginn: "Agents::LiquidOutputAgent",
        description: "Serves a Liquid template rendered on the events it received at its web-request URL (any extension).",
        can_receive_events: true,
        can_create_events: false,
        can_be_scheduled: false,
        takes_web_requests: false,
        can_control_other_agents: false,
        default_schedule: None,
        health: Health::Received {
            option: "expected_receive_period_in_days",
            default_days: 2.0,
        },
        validate: liquid_output::validate,
        build: liquid_output::build,
    },
    KindInfo {
        kind: Kind::LocalFile,
        huginn: "Agents::LocalFileAgent",
        description: "Emits pointers to files in an allowed directory, or writes received events to files there.",
        can_receive_events: true,
        can_create_events: true,
        can_be_scheduled: true,
        takes_web_requests: false,
        can_control_other_agents: false,
        default_schedule: Some("every_1h"),
        health: Health::NoRecentErrors,
        validate: local_file::validate,
        build: local_file::build,
    },
    KindInfo {
        kind: Kind::ReadFile,
        huginn: "Agents::ReadFileAgent",
        description: "Reads the file a received file pointer names (in an allowed directory) and emits its contents.",
        can_receive_events: true,
        can_create_events: true,
        can_be_scheduled: false,
        takes_web_requests: false,
        can_control_other_agents: false,
        default_schedule: None,
        // Huginn's `received_event_without_error?`: received at all (no period), no
        // error since.
        health: Health::Received {
            option: "expected_receive_period_in_days",
            default_days: 36_500.0,
        },
        validate: read_file::validate,
        build: read_file::build,
    },
    KindInfo {
        kind: Kind::HttpStatus,
        huginn: "Agents::HttpStatusAgent",
        description: "Requests a URL when it runs or per received event and emits the status, the time taken and chosen headers.",
        can_receive_events: true,
        can_create_events: true,
        can_be_scheduled: true,
        takes_web_requests: false,
        can_control_other_agents: false,
        default_schedule: Some("every_12h"),
        health: Health::LastStatus,
        validate: http_status::validate,
        build: http_status::build,
    },
    KindInfo {
        kind: Kind::ShellCommand,
        huginn: "Agents::ShellCommandAgent",
        description: "Runs a command on the host and emits its output (only when [insecure_agents] is enabled).",
        can_receive_events: true,
        can_create_events: true,
        can_be_scheduled: true,
        takes_web_requests: false,
        can_control_other_agents: false,
        default_schedule: Some("never"),
        health: Health::Created {
            option: "expected_update_period_in_days",
            default_days: 1.0,
        },
        validate: shell_command::validate,
        build: shell_command::build,
    },
    KindInfo {
        kind: Kind::JavaScript,
        huginn: "Agents::JavaScriptAgent",
        description: "Runs JavaScript code that creates, receives and remembers events (only when [insecure_agents] is enabled).",
        can_receive_events: true,
        can_create_events: true,
        can_be_scheduled: true,
        takes_web_requests: false,
        can_control_other_agents: false,
        default_schedule: Some("never"),
        health: Health::PeriodsIfSet {
            created: "expected_update_period_in_days",
            received: "expected_receive_period_in_days",
        },
        validate: java_script::validate,
        build: java_script::build,
    },
    KindInfo {
        kind: Kind::KeyValueStore,
        huginn: "Agents::KeyValueStoreAgent",
        description: "Keeps a key-value store in its memory, written by received events, that the agents it controls read in their templates (as its `variable`).",
        can_receive_events: true,
        can_create_events: false,
        can_be_scheduled: false,
        takes_web_requests: false,
        can_control_other_agents: true,
        default_schedule: None,
        health: Health::NoRecentErrors,
        validate: key_value_store::validate,
        build: key_value_store::build,
    },
    KindInfo {
        kind: Kind::Sentiment,
        huginn: "Agents::SentimentAgent",
        description: "Scores the text at a JSONPath of each received event for valence, arousal and dominance with the operator's word list (only when [sentiment] lexicon_path is set).",
        can_receive_events: true,
        can_create_events: true,
        can_be_scheduled: false,
        takes_web_requests: false,
        can_control_other_agents: false,
        default_schedule: None,
        health: Health::Received {
            option: "expected_receive_period_in_days",
            default_days: 1.0,
        },
        validate: sentiment::validate,
        build: sentiment::build,
    },
    KindInfo {
        kind: Kind::Jabber,
        huginn: "Agents::JabberAgent",
        description: "Sends each received event as an XMPP (Jabber) chat message, over STARTTLS.",
        can_receive_events: true,
        can_create_events: false,
        can_be_scheduled: false,
        takes_web_requests: false,
        can_control_other_agents: false,
        default_schedule: None,
        health: Health::Received {
            option: "expected_receive_period_in_days",
            default_days: 2.0,
        },
        validate: jabber::validate,
        build: jabber::build,
    },
];

/// The schedule an agent runs on: a scheduler's own `schedule` option, a schedulable
/// agent's `schedule` (or its type's default), else none.
pub fn schedule_of(row: &AgentRow) -> Option<String> {
    let k = kind(&row.agent_type)?;
    if k.kind == Kind::Scheduler {
        return Some(scheduler::schedule_text(&row.options_json().ok()?));
    }
    if !k.can_be_scheduled {
        return None;
    }
    row.schedule
        .clone()
        .filter(|s| !s.trim().is_empty())
        .or_else(|| k.default_schedule.map(str::to_string))
}

/// Finds a type by muninn's name or Huginn's (`Agents::WebhookAgent`, `WebhookAgent`).
pub fn kind(name: &str) -> Option<&'static KindInfo> {
    let short = name.rsplit("::").next().unwrap_or(name);
    KINDS.iter().find(|k| {
        k.name() == name || k.huginn == name || k.huginn.rsplit("::").next() == Some(short)
    })
}

pub fn kind_names() -> String {
    KINDS
        .iter()
        .map(KindInfo::name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a controlling agent asks the hub to do to its control targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlAction {
    Run,
    Enable { drop_pending_events: bool },
    Disable,
}

/// Everything an agent's behaviour may touch while it handles one event or one check.
pub struct AgentCtx<'a> {
    pub agent: &'a AgentRow,
    pub memory: &'a mut Value,
    pub(crate) emitted: Vec<Value>,
    pub(crate) logs: Vec<NewLog>,
    pub(crate) inbound: Option<EventId>,
    pub(crate) memory_changed: bool,
    pub(crate) controls: Vec<ControlAction>,
    pub(crate) check_again_in: Option<std::time::Duration>,
    /// Requests to send through the delivery engine, with the event that caused each.
    pub(crate) requests: Vec<(EventId, post::PreparedRequest)>,
    /// URLs to fetch; the responses come back to `Behavior::fetched`.
    pub(crate) fetches: Vec<rss::Fetch>,
    /// Mails to queue in the outbox, with the event that caused each (email agents).
    pub(crate) mails: Vec<(Option<EventId>, crate::mail::Mail)>,
    /// Asynchronous work to start; each result comes back to `Behavior::task_done`.
    pub(crate) tasks: Vec<task::Task>,
    /// Where templates find the agent that created an event (`agent`); None in tests.
    pub(crate) directory: Option<&'a drops::AgentDirectory>,
    /// What `{% credential %}` reads while this agent renders (see `AgentActor::new`).
    pub(crate) credentials: Arc<dyn CredentialSource>,
    /// The third-party API bases (`[apis]`); the real services' outside a hub.
    pub(crate) apis: Arc<crate::config::ApisConfig>,
    /// Where file agents may read and write (`[files]`); None: nowhere (tests).
    pub(crate) files: Option<&'a files::FilePolicy>,
    /// The limits insecure agents (shell_command) run within; None: they may not run.
    pub(crate) insecure: Option<insecure::Limits>,
    /// The sentiment agent's lexicon (`[sentiment]`); None: none is configured.
    pub(crate) sentiment: Option<Arc<sentiment::lexicon::Lexicon>>,
    /// Credentials of the agent's owner to set, as (name, value), in order (a
    /// java_script agent's `this.credential(name, value)`); the actor saves them
    /// through the credentials service. A dry run drops them.
    pub(crate) credential_saves: Vec<(String, String)>,
}

/// The real services' API bases, shared by every context built outside a hub.
fn default_apis() -> Arc<crate::config::ApisConfig> {
    static APIS: std::sync::LazyLock<Arc<crate::config::ApisConfig>> =
        std::sync::LazyLock::new(Arc::default);
    APIS.clone()
}

impl<'a> AgentCtx<'a> {
    pub fn new(agent: &'a AgentRow, memory: &'a mut Value) -> Self {
        AgentCtx {
            agent,
            memory,
            emitted: Vec::new(),
            logs: Vec::new(),
            inbound: None,
            memory_changed: false,
            controls: Vec::new(),
            check_again_in: None,
            requests: Vec::new(),
            fetches: Vec::new(),
            mails: Vec::new(),
            tasks: Vec::new(),
            directory: None,
            credentials: crate::template::context::no_credentials(),
            apis: default_apis(),
            files: None,
            insecure: None,
            sentiment: None,
            credential_saves: Vec::new(),
        }
    }

    /// The file policy file agents go through (none allowed when the hub gave none).
    pub fn files(&self) -> &'a files::FilePolicy {
        self.files.unwrap_or(&files::NO_FILES)
    }

    /// Asks for `fetch` to be made (asynchronously, with a timeout).
    pub fn fetch(&mut self, fetch: rss::Fetch) {
        self.fetches.push(fetch);
    }

    /// Asks the delivery engine to send `req`, on behalf of event `event_id`.
    pub fn request(&mut self, event_id: EventId, req: post::PreparedRequest) {
        self.requests.push((event_id, req));
    }

    /// Queues `mail` in the outbox, on behalf of event `event_id` (None: a digest).
    pub fn mail(&mut self, event_id: Option<EventId>, mail: crate::mail::Mail) {
        self.mails.push((event_id, mail));
    }

    /// Asks for `task` to be run (asynchronously); its result comes to `task_done`.
    pub fn spawn_task(&mut self, task: task::Task) {
        self.tasks.push(task);
    }

    /// Asks for the owner's credential `name` to be set to `value` (created if new).
    pub fn save_credential(&mut self, name: String, value: String) {
        self.credential_saves.push((name, value));
    }

    /// Asks the hub to act on this agent's control targets.
    pub fn control(&mut self, action: ControlAction) {
        self.controls.push(action);
    }

    /// Asks for another `check` after `d` (e.g. the next of a spaced-out release).
    pub fn check_again_in(&mut self, d: std::time::Duration) {
        self.check_again_in = Some(d);
    }

    pub fn emit(&mut self, payload: Value) {
        self.emitted.push(payload);
    }

    pub fn log(&mut self, message: impl Into<String>) {
        self.logs.push(NewLog {
            level: LEVEL_INFO,
            message: message.into(),
            inbound_event_id: self.inbound,
        });
    }

    pub fn error(&mut self, message: impl Into<String>) {
        self.logs.push(NewLog {
            level: LEVEL_ERROR,
            message: message.into(),
            inbound_event_id: self.inbound,
        });
    }

    /// Marks memory as changed so it is saved with the agent's next write.
    pub fn memory_mut(&mut self) -> &mut Value {
        self.memory_changed = true;
        self.memory
    }
}

/// The behaviour of one agent type. Handlers are synchronous and CPU-only: anything
/// slow (network) is sent to another actor, so one agent never holds up the others.
pub trait Behavior: Send {
    /// Handles one event received over a link.
    fn receive(&mut self, _ctx: &mut AgentCtx<'_>, _event: &EventRow, _payload: &Value) {}

    /// Runs on the agent's schedule or when asked to run now.
    fn check(&mut self, _ctx: &mut AgentCtx<'_>) {}

    /// A fetch this agent asked for came back.
    fn fetched(&mut self, _ctx: &mut AgentCtx<'_>, _fetch: &rss::Fetch, _got: &rss::Fetched) {}

    /// A task this agent asked for (`AgentCtx::spawn_task`) finished.
    fn task_done(&mut self, _ctx: &mut AgentCtx<'_>, _output: task::TaskOutput) {}

    /// The long-lived work to run while the agent is enabled (a jabber agent listening
    /// in a chat room), or None. Asked when the agent starts, is enabled or its options
    /// change; a problem with the options is an error log on `ctx`.
    fn listener(&self, _ctx: &mut AgentCtx<'_>) -> Option<listen::Listener> {
        None
    }
}

#[cfg(test)]
mod fixture_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_found_by_either_name() {
        assert_eq!(kind("webhook").map(KindInfo::name), Some("webhook"));
        assert_eq!(
            kind("Agents::WebhookAgent").map(KindInfo::name),
            Some("webhook")
        );
        assert_eq!(
            kind("EventFormattingAgent").map(KindInfo::name),
            Some("event_formatting")
        );
        assert!(kind("nope").is_none());
    }
}

#[cfg(test)]
mod kind_tests {
    use crate::agents::{KINDS, Kind, kind};

    #[test]
    fn every_kind_has_one_entry() {
        assert_eq!(KINDS.len(), Kind::ALL.len());
        for k in Kind::ALL {
            assert_eq!(KINDS.iter().filter(|i| i.kind == *k).count(), 1, "{k}");
            assert_eq!(kind(k.name()).map(|i| i.kind), Some(*k));
            assert_eq!(Kind::parse(k.name()), Some(*k));
        }
    }

    #[test]
    fn an_unknown_type_is_no_kind() {
        assert!(kind("Agents::TwitterStreamAgent").is_none());
        assert!(kind("").is_none());
        assert_eq!(
            Kind::parse("Agents::WebhookAgent"),
            None,
            "stored rows hold muninn's names"
        );
    }
}
