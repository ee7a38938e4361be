//! The agent types muninn has, as a type: shared vocabulary (a leaf), so a subsystem
//! below `agents` (feeds, endpoints) can tell which type a row is without importing it.
//! A stored row keeps its type as text (Huginn's exports and older rows name types as
//! text, and a row of a type this build does not have still loads); code that needs to
//! know which type it holds looks the text up once (`agents::kind`, or `Kind::parse`
//! below `agents`) and compares `Kind`s, never type strings. What the hub knows about
//! each type is `agents::KINDS`, one entry per variant.

/// Declares `Kind` with one variant per type and the name muninn's API uses for it.
macro_rules! kinds {
    ($($variant:ident => $name:expr,)*) => {
        /// One agent type muninn has; `agents::KINDS` holds what the hub knows about each.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Kind {
            $($variant,)*
        }

        impl Kind {
            /// Every type, in declaration order.
            pub const ALL: &'static [Kind] = &[$(Kind::$variant,)*];

            /// muninn's name for the type, used in the API and stored in rows (`webhook`).
            pub const fn name(self) -> &'static str {
                match self {
                    $(Kind::$variant => $name,)*
                }
            }
        }
    };
}

kinds! {
    Webhook => "webhook",
    EventFormatting => "event_formatting",
    Trigger => "trigger",
    DeDuplication => "de_duplication",
    Delay => "delay",
    ManualEvent => "manual_event",
    Scheduler => "scheduler",
    Rss => "rss",
    Post => "post",
    DataOutput => "data_output",
    Email => "email",
    EmailDigest => "email_digest",
    Digest => "digest",
    Website => "website",
    Jq => "jq",
    JsonParse => "json_parse",
    ChangeDetector => "change_detector",
    AttributeDifference => "attribute_difference",
    GapDetector => "gap_detector",
    Commander => "commander",
    PeakDetector => "peak_detector",
    Csv => "csv",
    Slack => "slack",
    Pushover => "pushover",
    Weather => "weather",
    PhantomJsCloud => "phantom_js_cloud",
    GithubNotifications => "github_notifications",
    ImapFolder => "imap_folder",
    LiquidOutput => "liquid_output",
    LocalFile => "local_file",
    ReadFile => "read_file",
    HttpStatus => "http_status",
    ShellCommand => "shell_command",
    JavaScript => "java_script",
    KeyValueStore => "key_value_store",
    Sentiment => "sentiment",
    Jabber => "jabber",
}

impl Kind {
    /// The type a stored row's text names (muninn's names only; `agents::kind` also
    /// takes Huginn's); None for a type this build does not have.
    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.iter().copied().find(|k| k.name() == name)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
