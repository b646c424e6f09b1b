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
}

}  // namespace telestra::gateway
