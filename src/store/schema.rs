//! Diesel table definitions, matching `migrations/`. Maintained by hand (see diesel.toml).

diesel::table! {
    users (id) {
        id -> BigInt,
        name -> Text,
        is_admin -> Bool,
        created_at -> Timestamp,
        email -> Nullable<Text>,
    }
}

diesel::table! {
    api_tokens (id) {
        id -> BigInt,
        user_id -> BigInt,
        token_hash -> Text,
        created_at -> Timestamp,
        last_used_at -> Nullable<Timestamp>,
        name -> Text,
        scope -> Text,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    agents (id) {
        id -> BigInt,
        user_id -> BigInt,
        agent_type -> Text,
        name -> Text,
        options -> Text,
        memory -> Text,
        schedule -> Nullable<Text>,
        disabled -> Bool,
        keep_events_for -> BigInt,
        propagate_immediately -> Bool,
        guid -> Text,
        events_count -> BigInt,
        last_checked_event_id -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        last_check_at -> Nullable<Timestamp>,
        last_receive_at -> Nullable<Timestamp>,
        last_event_at -> Nullable<Timestamp>,
        last_error_at -> Nullable<Timestamp>,
        last_web_request_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    links (id) {
        id -> BigInt,
        source_id -> BigInt,
        receiver_id -> BigInt,
        event_id_at_creation -> BigInt,
        created_at -> Timestamp,
    }
}

diesel::table! {
    control_links (id) {
        id -> BigInt,
        controller_id -> BigInt,
        target_id -> BigInt,
        created_at -> Timestamp,
    }
}

diesel::table! {
    events (id) {
        id -> BigInt,
        user_id -> BigInt,
        agent_id -> Nullable<BigInt>,
        event_type -> Text,
        payload -> Text,
        created_at -> Timestamp,
        expires_at -> Nullable<Timestamp>,
        target_agent_id -> Nullable<BigInt>,
        root_id -> Nullable<BigInt>,
        depth -> Integer,
    }
}

diesel::table! {
    agent_logs (id) {
        id -> BigInt,
        agent_id -> BigInt,
        level -> Integer,
        message -> Text,
        inbound_event_id -> Nullable<BigInt>,
        outbound_event_id -> Nullable<BigInt>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    incoming_webhooks (id) {
        id -> BigInt,
        user_id -> BigInt,
        agent_id -> BigInt,
        name -> Text,
        description -> Nullable<Text>,
        token -> Text,
        previous_token -> Nullable<Text>,
        previous_expires_at -> Nullable<Timestamp>,
        is_active -> Bool,
        transform_template -> Nullable<Text>,
        rate_limit -> Nullable<BigInt>,
        allowed_ips -> Nullable<Text>,
        signature -> Nullable<Text>,
        max_body_bytes -> Nullable<BigInt>,
        response_headers -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    inbound_log_chunks (id) {
        id -> BigInt,
        endpoint -> Text,
        lines -> Integer,
        body -> Text,
    }
}

diesel::table! {
    inbound_stats (endpoint, outcome) {
        endpoint -> Text,
        outcome -> Text,
        requests -> BigInt,
        total_ms -> BigInt,
    }
}

diesel::table! {
    idempotency_keys (id) {
        id -> BigInt,
        endpoint -> Text,
        idem_key -> Text,
        status -> Integer,
        body -> Text,
        content_type -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    user_credentials (id) {
        id -> BigInt,
        user_id -> BigInt,
        credential_name -> Text,
        sealed_value -> Text,
        mode -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::joinable!(user_credentials -> users (user_id));
diesel::joinable!(api_tokens -> users (user_id));
diesel::joinable!(agents -> users (user_id));
diesel::joinable!(agent_logs -> agents (agent_id));

diesel::table! {
    subscriptions (id) {
        id -> BigInt,
        user_id -> BigInt,
        name -> Text,
        description -> Nullable<Text>,
        url -> Text,
        event_types -> Text,
        agent_id -> Nullable<BigInt>,
        filters -> Nullable<Text>,
        headers -> Text,
        payload_template -> Nullable<Text>,
        signature_scheme -> Text,
        signature_header -> Nullable<Text>,
        secrets -> Text,
        retry_count -> Integer,
        retry_delay_ms -> BigInt,
        max_retry_delay_ms -> BigInt,
        retry_schedule -> Nullable<Text>,
        timeout_ms -> BigInt,
        rate_limit -> Nullable<Integer>,
        rate_limit_period_ms -> BigInt,
        max_in_flight -> Integer,
        ordered -> Bool,
        is_active -> Bool,
        paused -> Bool,
        disabled_reason -> Nullable<Text>,
        failure_threshold -> Integer,
        circuit_cooldown_ms -> BigInt,
        circuit_state -> Text,
        circuit_opened_at -> Nullable<Timestamp>,
        consecutive_failures -> Integer,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    agent_subscriptions (agent_id) {
        agent_id -> BigInt,
        subscription_id -> BigInt,
    }
}

diesel::table! {
    deliveries (id) {
        id -> BigInt,
        subscription_id -> BigInt,
        event_id -> BigInt,
        message_id -> Text,
        status -> Text,
        attempts -> Integer,
        failures -> Integer,
        next_attempt_at -> Timestamp,
        last_status -> Nullable<Integer>,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        delivered_at -> Nullable<Timestamp>,
        request -> Nullable<Text>,
        claimed_by -> Nullable<Text>,
        claim_expires_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    delivery_attempts (id) {
        id -> BigInt,
        delivery_id -> BigInt,
        subscription_id -> BigInt,
        attempt_number -> Integer,
        started_at -> Timestamp,
        duration_ms -> BigInt,
        request_headers -> Text,
        request_body -> Text,
        response_status -> Nullable<Integer>,
        response_excerpt -> Nullable<Text>,
        error -> Nullable<Text>,
    }
}

diesel::joinable!(deliveries -> subscriptions (subscription_id));
diesel::joinable!(delivery_attempts -> deliveries (delivery_id));
diesel::table! {
    scenarios (id) {
        id -> BigInt,
        user_id -> BigInt,
        guid -> Text,
        name -> Text,
        description -> Nullable<Text>,
        tag_fg_color -> Nullable<Text>,
        tag_bg_color -> Nullable<Text>,
        icon -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    scenario_agents (scenario_id, agent_id) {
        scenario_id -> BigInt,
        agent_id -> BigInt,
    }
}

diesel::table! {
    writer_marks (id) {
        id -> BigInt,
        event_ids_reserved -> BigInt,
        events_counted_upto -> BigInt,
    }
}

diesel::table! {
    mail_outbox (id) {
        id -> BigInt,
        agent_id -> BigInt,
        user_id -> BigInt,
        event_id -> Nullable<BigInt>,
        message -> Text,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    inbound_rate_windows (endpoint, window_start) {
        endpoint -> Text,
        window_start -> Timestamp,
        requests -> BigInt,
    }
}

diesel::table! {
    nodes (id) {
        id -> Text,
        started_at -> Timestamp,
        heartbeat_at -> Timestamp,
        version -> Text,
        instance -> Text,
    }
}

diesel::table! {
    leases (resource) {
        resource -> Text,
        node_id -> Text,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    schedule_ticks (agent_id) {
        agent_id -> BigInt,
        fired_at -> Timestamp,
    }
}

diesel::table! {
    node_requests (id) {
        id -> BigInt,
        resource -> Text,
        action -> Text,
        argument -> Text,
        asked_by -> Text,
        created_at -> Timestamp,
        taken_by -> Nullable<Text>,
        answer -> Nullable<Text>,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    agent_subscriptions,
    scenarios,
    scenario_agents,
    users,
    api_tokens,
    agents,
    links,
    control_links,
    events,
    agent_logs,
    subscriptions,
    deliveries,
    delivery_attempts,
    incoming_webhooks,
    inbound_log_chunks,
    inbound_stats,
    idempotency_keys,
    user_credentials,
    mail_outbox,
    inbound_rate_windows,
    nodes,
    leases,
    schedule_ticks,
    node_requests
);
