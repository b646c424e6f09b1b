#include "gateway/metrics/backend_metrics.h"

#include <map>
#include <string>

namespace telestra::gateway {

void ExportEventHubMetrics(const backend::EventHub& hub, MetricsWriter& out) {
  out.Counter("telestra_events_total", "Events published (the last seq)", hub.last_seq());
  out.Counter("telestra_undeliverable_replies_total", "Replies whose client had gone",
              hub.undeliverable_replies());
  out.Gauge("telestra_api_clients", "Clients attached to the event hub", hub.client_count());
  const backend::EventHub::DeliveryStats delivery = hub.delivery_stats();
  const char* help = "Events handed to their clients, by the thread that delivered them";
  out.Counter("telestra_event_deliveries_total", help, delivery.by_delivery_thread,
              {{"by", "delivery_thread"}});
  out.Counter("telestra_event_deliveries_total", help, delivery.by_reply_scope,
              {{"by", "command_thread"}});
}

void ExportBackendMetrics(const backend::GatewayBackend& backend, MetricsWriter& out) {
  std::map<std::string, int> calls_by_state;
  for (const telestra::v1::Status& account : backend.ListAccounts()) {
    out.Gauge("telestra_account_status", "account_status of each account (200 registered)",
              account.account_status(), {{"account", account.account()}});
    for (const auto& call : account.calls()) {
      calls_by_state[telestra::v1::CallState_Name(call.state())]++;
    }
  }
  for (const auto& [state, count] : calls_by_state) {
    out.Gauge("telestra_calls", "Calls by state", count, {{"state", state}});
  }
  out.Counter("telestra_calls_started_total", "Calls placed or received", backend.calls_started());
  const backend::GatewayBackend::CallStats calls = backend.call_stats();
  const char* setup_help =
      "Call setup time: make-call to the far end's 2xx (outgoing), the far end's INVITE to the "
      "call's establishment (incoming)";
  out.Histogram("telestra_call_setup_seconds", setup_help, calls.setup_outgoing_seconds,
                {{"direction", "outgoing"}});
  out.Histogram("telestra_call_setup_seconds", setup_help, calls.setup_incoming_seconds,
                {{"direction", "incoming"}});
  for (const auto& [code, count] : calls.ended_by_code) {
    out.Counter("telestra_calls_ended_total",
                "Calls ended, by the SIP status that ended them (0: none, e.g. a BYE)", count,
                {{"code", std::to_string(code)}});
  }
  out.Histogram("telestra_call_packet_loss_ratio",
                "Each call's received packet loss at its end (late packets included)",
                calls.loss_ratio);
  out.Histogram("telestra_call_jitter_seconds",
                "Each call's interarrival jitter (RFC 3550) at its end", calls.jitter_seconds);
  out.Histogram("telestra_call_mos", "Each call's E-model MOS estimate at its end", calls.mos);
}

void ExportMediaMetrics(const backend::RtpMediaEngine& media, MetricsWriter& out) {
  out.Gauge("telestra_media_calls", "Calls with RTP ports open", media.open_calls());
  const backend::RtpMediaEngine::Counters counters = media.counters();
  out.Counter("telestra_media_discarded_datagrams_total",
              "Datagrams that arrived on an RTP/RTCP port of no call (read and discarded)",
              counters.datagrams_discarded);
  out.Counter("telestra_media_foreign_datagrams_total",
              "RTP/RTCP datagrams of a call from a source other than its far end (discarded)",
              counters.datagrams_foreign);
  out.Counter("telestra_media_frames_skipped_total",
              "20 ms media ticks the media thread missed beyond its 3-frame catch-up",
              counters.frames_skipped);
}

void ExportSipStackMetrics(const backend::SofiaSipStack& stack, MetricsWriter& out) {
  const backend::SofiaSipStack::Stats stats = stack.stats();
  out.Counter("telestra_sip_untrusted_requests_total",
              "INVITEs from neither a registrar nor a [sip-settings] trusted network "
              "(answered 403)",
              stats.untrusted_requests);
  out.Counter("telestra_sip_foreign_realm_challenges_total",
              "Calls ended because a challenge came from another realm than the registrar's",
              stats.foreign_realm_challenges);
  out.Counter("telestra_sip_ring_timeouts_total",
              "Incoming calls not answered within ring-timeout (answered 480)",
              stats.ring_timeouts);
  out.Counter("telestra_sip_invite_timeouts_total",
              "Outgoing calls without a final answer within invite-timeout (cancelled)",
              stats.invite_timeouts);
  out.Counter("telestra_sip_ringing_refused_total", "Incoming calls refused 486 over max-ringing",
              stats.ringing_refused);
  out.Histogram("telestra_registration_seconds",
                "REGISTER (first or refresh) to its 2xx, a digest challenge included",
                stats.registration_seconds);
}

void ExportJournalMetrics(const backend::Journal& journal, MetricsWriter& out) {
  const backend::Journal::Stats stats = journal.stats();
  out.Gauge("telestra_journal_calls", "Calls the journal holds now",
            static_cast<double>(stats.calls));
  out.Counter("telestra_journal_call_writes_total",
              "Writes of the journal's calls file (each rewrites it whole)", stats.call_writes);
  out.Counter("telestra_journal_events_written_total",
              "Events appended to the journal's event history", stats.events_written);
  out.Counter("telestra_journal_event_rewrites_total",
              "Rewrites of the journal's event history file down to the history kept",
              stats.event_rewrites);
  out.Counter("telestra_journal_write_errors_total",
              "Journal writes that failed (calls or events; each is logged)", stats.write_errors);
  out.Gauge("telestra_journal_last_call_write_seconds",
            "How long the newest write of the calls file took (to the kernel; the device sync "
            "follows within a second)",
            stats.last_call_write_seconds);
}

}  // namespace telestra::gateway
