// The backend's metrics (docs/metrics.md): the event hub, the accounts and
// calls, the media engine, the SIP user agent and the journal, each written
// by its own function, read from the component at scrape time. They live
// here, next to the metrics writer, so that backend/ knows nothing of
// /metrics.
#pragma once

#include "backend/event_hub.h"
#include "backend/gateway_backend.h"
#include "backend/media/rtp_media_engine.h"
#include "backend/sip/sofia_sip_stack.h"
#include "backend/state/journal.h"
#include "gateway/metrics/metrics.h"

namespace telestra::gateway {

// telestra_events_total, telestra_undeliverable_replies_total,
// telestra_api_clients, telestra_event_deliveries_total{by}.
// Thread: any (a scrape).
void ExportEventHubMetrics(const backend::EventHub& hub, MetricsWriter& out);

// telestra_account_status{account}, telestra_calls{state},
// telestra_calls_started_total, telestra_calls_ended_total{code},
// telestra_call_setup_seconds{direction}, telestra_call_packet_loss_ratio,
// telestra_call_jitter_seconds, telestra_call_mos. Thread: any.
void ExportBackendMetrics(const backend::GatewayBackend& backend, MetricsWriter& out);

// telestra_media_calls, telestra_media_{discarded,foreign}_datagrams_total,
// telestra_media_frames_skipped_total. Thread: any.
void ExportMediaMetrics(const backend::RtpMediaEngine& media, MetricsWriter& out);

// telestra_sip_*_total: requests refused, challenges, timeouts of the SIP
// user agent; telestra_registration_seconds. Thread: any.
void ExportSipStackMetrics(const backend::SofiaSipStack& stack, MetricsWriter& out);

// telestra_journal_calls, telestra_journal_call_writes_total,
// telestra_journal_events_written_total,
// telestra_journal_event_rewrites_total, telestra_journal_write_errors_total,
// telestra_journal_last_call_write_seconds: the journal of [state-settings]
// dir (exported only when it is on). Thread: any.
void ExportJournalMetrics(const backend::Journal& journal, MetricsWriter& out);

}  // namespace telestra::gateway
