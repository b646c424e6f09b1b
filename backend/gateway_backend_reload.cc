#include "backend/gateway_backend.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

// SIGHUP: the plan's accounts applied to the running gateway (Reload).

namespace telestra::backend {

GatewayBackend::ReloadSummary GatewayBackend::Reload(std::vector<AccountConfig> accounts) {
  ReloadSummary summary;
  std::vector<std::pair<AccountConfig, uint64_t>> to_register;
  std::vector<std::pair<std::string, uint64_t>> to_unregister;
  std::vector<int64_t> to_end;
  {
    absl::MutexLock lock(&mu_);
    std::vector<std::string> order;
    for (const AccountConfig& config : accounts) order.push_back(config.name);
    // Gone from the plan: as a logout, and forgotten.
    for (const std::string& name : order_) {
      if (std::find(order.begin(), order.end(), name) != order.end()) continue;
      AccountState& state = accounts_.find(name)->second;
      SetStatus(state, 0, "Removed from the plan");
      for (auto& [id, call] : calls_) {
        if (call.account != name || call.hanging_up) continue;
        call.hanging_up = true;
        to_end.push_back(id);
      }
      to_unregister.emplace_back(name, next_generation_++);
      accounts_.erase(name);
      summary.removed.push_back(name);
    }
    for (AccountConfig& config : accounts) {
      auto it = accounts_.find(config.name);
      if (it != accounts_.end() && it->second.plan == config) {
        summary.unchanged.push_back(config.name);
        continue;
      }
      const bool added = it == accounts_.end();
      if (added) it = accounts_.emplace(config.name, AccountState()).first;
      AccountState& state = it->second;
      state.plan = config;
      state.config = std::move(config);
      state.generation = next_generation_++;
      (added ? summary.added : summary.changed).push_back(state.config.name);
      if (state.config.register_on_start) {
        state.reason.clear();  // a new login reports progress
        SetStatus(state, 100, "Registering");
        to_register.emplace_back(state.config, state.generation);
      } else if (!added) {
        // Changed and no longer registering on its own: as a logout.
        SetStatus(state, 0, "Logged out");
        to_unregister.emplace_back(state.config.name, state.generation);
      }
    }
    order_ = std::move(order);
  }
  // The stack runs these in order: calls end before their account
  // unregisters.
  for (int64_t id : to_end) stack_->HangupCall(id);
  for (auto& [name, generation] : to_unregister) stack_->Unregister(name, generation);
  for (auto& [config, generation] : to_register) stack_->Register(config, generation);
  return summary;
}

}  // namespace telestra::backend
