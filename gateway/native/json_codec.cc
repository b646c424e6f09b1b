#include "gateway/native/json_codec.h"

#include <simdjson.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace telestra::gateway {
namespace {

namespace od = simdjson::ondemand;
using simdjson::error_code;
using simdjson::SUCCESS;

// Largest call id a client may send (2^53: the largest integer every JSON
// implementation represents exactly).
constexpr int64_t kMaxCallId = int64_t{1} << 53;

// Nesting limit for values the codec validates but does not use.
constexpr int kMaxDepth = 128;

// What a field of the message turned out to be.
enum class Slot { kAbsent, kOk, kWrongType, kOutOfRange };

struct StringField {
  Slot slot = Slot::kAbsent;
  std::string_view value;
};

struct IntField {
  Slot slot = Slot::kAbsent;
  int64_t value = 0;
};

struct BoolField {
  Slot slot = Slot::kAbsent;
  bool value = false;
};

struct SeqField {
  Slot slot = Slot::kAbsent;
  uint64_t value = 0;
};

// Every field any command may carry. String views point into the parser's
// string buffer and stay valid until the next iterate().
struct Fields {
  StringField cmd, account, user, pass, server, num, token, secret, digits, instance;
  IntField call_id, duration_ms, to_call_id;
  BoolField extended;
  SeqField after_seq;
};

error_code ConsumeValue(od::value& value, int depth);

// Validates and consumes a number of any kind.
error_code ConsumeNumber(od::value& value) {
  od::number_type type;
  error_code error = value.get_number_type().get(type);
  if (error) return error;
  if (type == od::number_type::signed_integer) {
    int64_t i;
    error = value.get_int64().get(i);
    if (error != simdjson::INCORRECT_TYPE) return error;  // else: too big
  } else if (type == od::number_type::unsigned_integer) {
    uint64_t u;
    error = value.get_uint64().get(u);
    if (error != simdjson::INCORRECT_TYPE && error != simdjson::NUMBER_OUT_OF_RANGE) {
      return error;
    }
  }
  double d;
  return value.get_double().get(d);
}

// Reads true/false; a broken atom ("tru") is reported as such rather than
// as a type mismatch.
error_code ConsumeBool(od::value& value, bool* out) {
  error_code error = value.get_bool().get(*out);
  if (error == simdjson::INCORRECT_TYPE) {
    const std::string_view raw = value.raw_json_token();
    return !raw.empty() && raw[0] == 'f' ? simdjson::F_ATOM_ERROR : simdjson::T_ATOM_ERROR;
  }
  return error;
}

// Validates and consumes any value, so that a syntax error anywhere in the
// message is reported (On-Demand would otherwise skip it unchecked).
error_code ConsumeValue(od::value& value, int depth) {
  od::json_type type;
  error_code error = value.type().get(type);
  if (error) return error;
  switch (type) {
    case od::json_type::object: {
      if (depth >= kMaxDepth) return simdjson::DEPTH_ERROR;
      od::object object;
      error = value.get_object().get(object);
      if (error) return error;
      for (auto field_result : object) {
        od::field field;
        error = std::move(field_result).get(field);
        if (error) return error;
        std::string_view key;
        error = field.unescaped_key().get(key);
        if (error) return error;
        error = ConsumeValue(field.value(), depth + 1);
        if (error) return error;
      }
      return SUCCESS;
    }
    case od::json_type::array: {
      if (depth >= kMaxDepth) return simdjson::DEPTH_ERROR;
      od::array array;
      error = value.get_array().get(array);
      if (error) return error;
      for (auto element_result : array) {
        od::value element;
        error = element_result.get(element);
        if (error) return error;
        error = ConsumeValue(element, depth + 1);
        if (error) return error;
      }
      return SUCCESS;
    }
    case od::json_type::string: {
      std::string_view s;
      return value.get_string().get(s);
    }
    case od::json_type::number:
      return ConsumeNumber(value);
    case od::json_type::boolean: {
      bool b;
      return ConsumeBool(value, &b);
    }
    case od::json_type::null: {
      bool is_null;
      error = value.is_null().get(is_null);
      return (error || !is_null) ? simdjson::N_ATOM_ERROR : SUCCESS;
    }
  }
  return simdjson::TAPE_ERROR;
}

error_code ReadString(od::value& value, StringField* field) {
  od::json_type type;
  error_code error = value.type().get(type);
  if (error) return error;
  if (type != od::json_type::string) {
    field->slot = Slot::kWrongType;
    return ConsumeValue(value, 1);
  }
  error = value.get_string().get(field->value);
  if (error) return error;
  field->slot = Slot::kOk;
  return SUCCESS;
}

error_code ReadBool(od::value& value, BoolField* field) {
  od::json_type type;
  error_code error = value.type().get(type);
  if (error) return error;
  if (type != od::json_type::boolean) {
    field->slot = Slot::kWrongType;
    return ConsumeValue(value, 1);
  }
  error = ConsumeBool(value, &field->value);
  if (error) return error;
  field->slot = Slot::kOk;
  return SUCCESS;
}

// A JSON number that must be an integer in [min, max]: kOk, kOutOfRange
// (an integer outside, however many digits) or kWrongType (a fraction or
// an exponent).
error_code ReadIntegerNumber(od::value& value, int64_t min, int64_t max, IntField* field) {
  od::number_type number_type;
  error_code error = value.get_number_type().get(number_type);
  if (error) return error;
  if (number_type == od::number_type::signed_integer) {
    int64_t n;
    error = value.get_int64().get(n);
    if (!error) {
      field->value = n;
      field->slot = (n < min || n > max) ? Slot::kOutOfRange : Slot::kOk;
      return SUCCESS;
    }
    if (error != simdjson::INCORRECT_TYPE) return error;
    // More digits than an int64 holds: out of range if it is valid JSON.
  }
  error = ConsumeNumber(value);
  if (error) return error;
  field->slot =
      number_type == od::number_type::floating_point_number ? Slot::kWrongType : Slot::kOutOfRange;
  return SUCCESS;
}

// call_id: a JSON integer or a string of decimal digits, 0 .. 2^53.
error_code ReadCallId(od::value& value, IntField* field) {
  od::json_type type;
  error_code error = value.type().get(type);
  if (error) return error;
  if (type == od::json_type::string) {
    std::string_view s;
    error = value.get_string().get(s);
    if (error) return error;
    if (s.empty()) {
      field->slot = Slot::kWrongType;
      return SUCCESS;
    }
    int64_t id = 0;
    bool too_big = false;
    for (char c : s) {
      if (c < '0' || c > '9') {
        field->slot = Slot::kWrongType;
        return SUCCESS;
      }
      if (!too_big) {
        id = id * 10 + (c - '0');
        too_big = id > kMaxCallId;
      }
    }
    field->slot = too_big ? Slot::kOutOfRange : Slot::kOk;
    field->value = id;
    return SUCCESS;
  }
  if (type != od::json_type::number) {
    field->slot = Slot::kWrongType;
    return ConsumeValue(value, 1);
  }
  return ReadIntegerNumber(value, 0, kMaxCallId, field);
}

// A plain JSON integer (no string form) that fits an int32.
error_code ReadInt(od::value& value, IntField* field) {
  od::json_type type;
  error_code error = value.type().get(type);
  if (error) return error;
  if (type != od::json_type::number) {
    field->slot = Slot::kWrongType;
    return ConsumeValue(value, 1);
  }
  return ReadIntegerNumber(value, INT32_MIN, INT32_MAX, field);
}

// A seq (after_seq): a JSON integer 0 .. 2^64-1. kOutOfRange for a larger
// integer, kWrongType for anything else (a negative number, a fraction, an
// exponent, a string).
error_code ReadSeq(od::value& value, SeqField* field) {
  od::json_type type;
  error_code error = value.type().get(type);
  if (error) return error;
  if (type != od::json_type::number) {
    field->slot = Slot::kWrongType;
    return ConsumeValue(value, 1);
  }
  const std::string_view raw = value.raw_json_token();
  od::number_type number_type;
  error = value.get_number_type().get(number_type);
  if (error) return error;
  if (number_type != od::number_type::floating_point_number) {
    uint64_t seq;
    error = value.get_uint64().get(seq);
    if (!error) {
      field->value = seq;
      field->slot = Slot::kOk;
      return SUCCESS;
    }
  }
  error = ConsumeNumber(value);  // negative, too large, or not an integer
  if (error) return error;
  const bool negative = !raw.empty() && raw[0] == '-';
  const bool integer = raw.find_first_of(".eE") == std::string_view::npos;
  field->slot = integer && !negative ? Slot::kOutOfRange : Slot::kWrongType;
  return SUCCESS;
}

// Reads the fields of the top-level object into `fields`, validating every
// value. Returns the first JSON error.
error_code ReadFields(od::object& object, Fields* fields) {
  for (auto field_result : object) {
    od::field field;
    error_code error = std::move(field_result).get(field);
    if (error) return error;
    std::string_view key;
    error = field.unescaped_key().get(key);
    if (error) return error;
    od::value& value = field.value();
    if (key == "cmd") {
      error = ReadString(value, &fields->cmd);
    } else if (key == "account") {
      error = ReadString(value, &fields->account);
    } else if (key == "call_id") {
      error = ReadCallId(value, &fields->call_id);
    } else if (key == "token") {
      error = ReadString(value, &fields->token);
    } else if (key == "num") {
      error = ReadString(value, &fields->num);
    } else if (key == "user") {
      error = ReadString(value, &fields->user);
    } else if (key == "pass") {
      error = ReadString(value, &fields->pass);
    } else if (key == "server") {
      error = ReadString(value, &fields->server);
    } else if (key == "extended") {
      error = ReadBool(value, &fields->extended);
    } else if (key == "secret") {
      error = ReadString(value, &fields->secret);
    } else if (key == "to_call_id") {
      error = ReadCallId(value, &fields->to_call_id);
    } else if (key == "digits") {
      error = ReadString(value, &fields->digits);
    } else if (key == "duration_ms") {
      error = ReadInt(value, &fields->duration_ms);
    } else if (key == "after_seq") {
      error = ReadSeq(value, &fields->after_seq);
    } else if (key == "instance") {
      error = ReadString(value, &fields->instance);
    } else {
      error = ConsumeValue(value, 1);  // unknown fields are ignored
    }
    if (error) return error;
  }
  return SUCCESS;
}

absl::Status Malformed(error_code error) {
  return absl::InvalidArgumentError(
      absl::StrCat("Malformed JSON: ", simdjson::error_message(error)));
}

absl::Status Missing(absl::string_view name) {
  return absl::InvalidArgumentError(absl::StrCat("Missing field: ", name));
}

// Checks a required string field; on success stores it in *out.
absl::Status RequireString(const StringField& field, absl::string_view name, std::string* out) {
  switch (field.slot) {
    case Slot::kOk:
      out->assign(field.value.data(), field.value.size());
      return absl::OkStatus();
    case Slot::kAbsent:
      return Missing(name);
    default:
      return absl::InvalidArgumentError(absl::StrCat("Field ", name, " must be a string"));
  }
}

// An optional string field: set through `set` when present.
template <typename Setter>
absl::Status OptionalString(const StringField& field, absl::string_view name, Setter set) {
  switch (field.slot) {
    case Slot::kAbsent:
      return absl::OkStatus();
    case Slot::kOk:
      set(field.value.data(), field.value.size());
      return absl::OkStatus();
    default:
      return absl::InvalidArgumentError(absl::StrCat("Field ", name, " must be a string"));
  }
}

absl::Status RequireCallId(const IntField& field, int64_t* out,
                           absl::string_view name = "call_id") {
  switch (field.slot) {
    case Slot::kOk:
      *out = field.value;
      return absl::OkStatus();
    case Slot::kAbsent:
      return Missing(name);
    case Slot::kOutOfRange:
      return absl::InvalidArgumentError(absl::StrCat("Field ", name, " is out of range"));
    default:
      return absl::InvalidArgumentError(absl::StrCat("Field ", name, " must be an integer"));
  }
}

// Fills `command` from the fields for the command named `cmd`. Required
// fields are checked in the order the seed lists them.
absl::Status BuildCommand(std::string_view cmd, const Fields& f, telestra::v1::Command* command) {
  absl::Status status;
  if (cmd == "login") {
    auto* c = command->mutable_login();
    status = RequireString(f.account, "account", c->mutable_account());
    if (status.ok()) status = RequireString(f.user, "user", c->mutable_user());
    if (status.ok()) status = RequireString(f.pass, "pass", c->mutable_pass());
    if (status.ok()) {
      status = RequireString(f.server, "server", c->mutable_server());
    }
  } else if (cmd == "make-call") {
    auto* c = command->mutable_make_call();
    status = RequireString(f.account, "account", c->mutable_account());
    if (status.ok()) status = RequireString(f.num, "num", c->mutable_num());
  } else if (cmd == "answer-call") {
    auto* c = command->mutable_answer_call();
    status = RequireString(f.account, "account", c->mutable_account());
    int64_t call_id = 0;
    if (status.ok()) status = RequireCallId(f.call_id, &call_id);
    c->set_call_id(call_id);
  } else if (cmd == "switch-call") {
    auto* c = command->mutable_switch_call();
    status = RequireString(f.account, "account", c->mutable_account());
    int64_t call_id = 0;
    if (status.ok()) status = RequireCallId(f.call_id, &call_id);
    c->set_call_id(call_id);
  } else if (cmd == "hangup-call") {
    auto* c = command->mutable_hangup_call();
    status = RequireString(f.account, "account", c->mutable_account());
    int64_t call_id = 0;
    if (status.ok()) status = RequireCallId(f.call_id, &call_id);
    c->set_call_id(call_id);
  } else if (cmd == "send-dtmf") {
    auto* c = command->mutable_send_dtmf();
    status = RequireString(f.account, "account", c->mutable_account());
    int64_t call_id = 0;
    if (status.ok()) status = RequireCallId(f.call_id, &call_id);
    c->set_call_id(call_id);
    if (status.ok()) status = RequireString(f.digits, "digits", c->mutable_digits());
    if (status.ok()) {
      switch (f.duration_ms.slot) {
        case Slot::kAbsent:
          break;  // the default
        case Slot::kOk:
          if (f.duration_ms.value == 0) {
            status = absl::InvalidArgumentError("Field duration_ms out of range: 0 (40..2000)");
          } else {
            c->set_duration_ms(static_cast<int32_t>(f.duration_ms.value));
          }
          break;
        case Slot::kOutOfRange:
          status = absl::InvalidArgumentError("Field duration_ms out of range (40..2000)");
          break;
        default:
          status = absl::InvalidArgumentError("Field duration_ms must be an integer");
      }
    }
  } else if (cmd == "transfer-call") {
    auto* c = command->mutable_transfer_call();
    status = RequireString(f.account, "account", c->mutable_account());
    int64_t call_id = 0;
    if (status.ok()) status = RequireCallId(f.call_id, &call_id);
    c->set_call_id(call_id);
    // num and to_call_id are both optional here; the backend wants one.
    if (status.ok() && f.num.slot != Slot::kAbsent) {
      status = RequireString(f.num, "num", c->mutable_num());
    }
    if (status.ok() && f.to_call_id.slot != Slot::kAbsent) {
      int64_t to_call_id = 0;
      status = RequireCallId(f.to_call_id, &to_call_id, "to_call_id");
      c->set_to_call_id(to_call_id);
    }
  } else if (cmd == "get-status") {
    status = RequireString(f.account, "account", command->mutable_get_status()->mutable_account());
  } else if (cmd == "logout") {
    status = RequireString(f.account, "account", command->mutable_logout()->mutable_account());
  } else if (cmd == "subscribe") {
    auto* c = command->mutable_subscribe();
    switch (f.extended.slot) {
      case Slot::kOk:
        c->set_extended(f.extended.value);
        break;
      case Slot::kAbsent:
        return Missing("extended");
      default:
        return absl::InvalidArgumentError("Field extended must be a boolean");
    }
    switch (f.after_seq.slot) {
      case Slot::kAbsent:
        break;
      case Slot::kOk:
        // A resume is in the extended protocol (its events carry seq).
        if (!c->extended()) {
          return absl::InvalidArgumentError("Field after_seq requires extended to be true");
        }
        c->set_after_seq(f.after_seq.value);
        break;
      case Slot::kOutOfRange:
        return absl::InvalidArgumentError("Field after_seq is out of range");
      default:
        return absl::InvalidArgumentError("Field after_seq must be a non-negative integer");
    }
    absl::Status instance = OptionalString(
        f.instance, "instance", [c](const char* data, size_t size) { c->set_instance(data, size); });
    if (!instance.ok()) return instance;
  } else if (cmd == "list-accounts") {
    command->mutable_list_accounts();
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("Unknown command: ", absl::string_view(cmd.data(), cmd.size())));
  }
  if (!status.ok()) return status;

  return OptionalString(f.token, "token", [command](const char* data, size_t size) {
    command->set_token(data, size);
  });
}

// simdjson rejects an object followed by more (`{...} x`) as unfinished
// (INCOMPLETE_ARRAY_OR_OBJECT) before any field is read. Reads the
// message again as a stream of documents: if the first one is a complete
// object, its fields go to *fields (for the account and token of the fail)
// and the error is TRAILING_CONTENT; a truly unfinished object stays
// INCOMPLETE_ARRAY_OR_OBJECT. `json` is padded (SIMDJSON_PADDING).
error_code RecoverFirstObject(od::parser& parser, const char* json, size_t size, Fields* fields) {
  od::document_stream stream;
  if (parser.iterate_many(json, size, std::max<size_t>(size, 64)).get(stream)) {
    return simdjson::INCOMPLETE_ARRAY_OR_OBJECT;
  }
  auto first = stream.begin();
  if (!(first != stream.end())) return simdjson::INCOMPLETE_ARRAY_OR_OBJECT;  // (no operator==)
  auto first_doc = *first;
  od::document_reference doc;
  od::object object;
  if (std::move(first_doc).get(doc) || doc.get_object().get(object) || ReadFields(object, fields)) {
    return simdjson::INCOMPLETE_ARRAY_OR_OBJECT;
  }
  return simdjson::TRAILING_CONTENT;
}

}  // namespace

struct JsonCodec::Impl {
  od::parser parser;
  od::parser stream_parser;  // for RecoverFirstObject
  // The message copied with SIMDJSON_PADDING bytes after it; grows up to
  // kRetainedMessageBytes (plus padding) and is freed after a larger one.
  std::string padded;
};

JsonCodec::JsonCodec() : impl_(std::make_unique<Impl>()) {}
JsonCodec::~JsonCodec() = default;

size_t JsonCodec::buffer_capacity() const {
  return impl_->parser.capacity() + impl_->stream_parser.capacity() + impl_->padded.capacity();
}

DecodedCommand JsonCodec::Decode(absl::string_view message) {
  DecodedCommand out = DecodeMessage(message);
  if (message.size() > kRetainedMessageBytes) {
    // The parsers size their buffers to the largest document they have seen
    // (about 6 bytes per byte of JSON) and never shrink: start afresh.
    impl_->parser = od::parser();
    impl_->stream_parser = od::parser();
    std::string().swap(impl_->padded);
  }
  return out;
}

DecodedCommand JsonCodec::DecodeMessage(absl::string_view message) {
  DecodedCommand out;
  std::string& padded = impl_->padded;
  const size_t needed = message.size() + simdjson::SIMDJSON_PADDING;
  if (padded.size() < needed) padded.resize(needed);
  std::memcpy(padded.data(), message.data(), message.size());
  std::memset(padded.data() + message.size(), 0, simdjson::SIMDJSON_PADDING);

  od::document doc;
  error_code error = impl_->parser.iterate(padded.data(), message.size(), padded.size()).get(doc);
  if (error) {
    out.command = Malformed(error);
    return out;
  }
  od::object object;
  error = doc.get_object().get(object);
  if (error == simdjson::INCORRECT_TYPE) {
    out.command = absl::InvalidArgumentError("Malformed JSON: message is not an object");
    return out;
  }
  Fields fields;
  if (error == simdjson::INCOMPLETE_ARRAY_OR_OBJECT) {
    error = RecoverFirstObject(impl_->stream_parser, padded.data(), message.size(), &fields);
  } else if (!error) {
    error = ReadFields(object, &fields);
  }
  if (!error) {
    // The whole document must be this one object.
    const char* location;
    error_code at = doc.current_location().get(location);
    if (at == SUCCESS) {
      error = simdjson::TRAILING_CONTENT;
    } else if (at != simdjson::OUT_OF_BOUNDS) {
      error = at;
    }
  }

  // Name the account and echo the token even when the message is rejected.
  if (fields.account.slot == Slot::kOk) {
    out.account.assign(fields.account.value.data(), fields.account.value.size());
  }
  if (fields.token.slot == Slot::kOk) {
    out.token.assign(fields.token.value.data(), fields.token.value.size());
  }
  if (error) {
    out.command = Malformed(error);
    return out;
  }

  switch (fields.cmd.slot) {
    case Slot::kOk:
      break;
    case Slot::kAbsent:
      out.command = Missing("cmd");
      return out;
    default:
      out.command = absl::InvalidArgumentError("Field cmd must be a string");
      return out;
  }
  if (fields.cmd.value == "auth") {
    out.auth = true;
    std::string secret;
    absl::Status status = RequireString(fields.secret, "secret", &secret);
    if (status.ok()) {
      out.secret = std::move(secret);
    } else {
      out.secret = std::move(status);
    }
  }
  telestra::v1::Command command;
  absl::Status status = BuildCommand(fields.cmd.value, fields, &command);
  if (status.ok()) {
    out.command = std::move(command);
  } else {
    out.command = std::move(status);
  }
  return out;
}

}  // namespace telestra::gateway
