// /ws/audio's wire <-> the call audio model: the upgrade's query, the
// client's commands, the gateway's events (docs/websocket-api.md).
#include "gateway/web/audio_socket_codec.h"

#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace telestra::gateway {
namespace {

using telestra::v1::CallAudioRequest;
using telestra::v1::CallAudioResponse;
using telestra::v1::CallAudioStart;

absl::StatusOr<CallAudioStart> Parse(const std::string& target) {
  absl::StatusOr<RequestTarget> parsed = ParseRequestTarget(target);
  EXPECT_TRUE(parsed.ok()) << target;
  if (!parsed.ok()) return parsed.status();
  return ParseAudioSocketQuery(*parsed);
}

std::string Error(const std::string& target) {
  absl::StatusOr<CallAudioStart> start = Parse(target);
  EXPECT_FALSE(start.ok()) << target;
  EXPECT_EQ(start.status().code(), absl::StatusCode::kInvalidArgument) << target;
  return std::string(start.status().message());
}

TEST(AudioSocketQueryTest, ReadsEveryParameter) {
  absl::StatusOr<CallAudioStart> start =
      Parse("/ws/audio?account=account%2D1&call_id=12&rate=16000&direction=speak&token=x");
  ASSERT_TRUE(start.ok()) << start.status();
  EXPECT_EQ(start->account(), "account-1");
  EXPECT_EQ(start->call_id(), 12);
  EXPECT_EQ(start->sample_rate(), 16000u);
  EXPECT_EQ(start->direction(), telestra::v1::AUDIO_DIRECTION_SPEAK);
}

TEST(AudioSocketQueryTest, RateDefaultsTo8000AndDirectionToBothAndCallZeroIsACall) {
  absl::StatusOr<CallAudioStart> start = Parse("/ws/audio?account=a&call_id=0");
  ASSERT_TRUE(start.ok()) << start.status();
  EXPECT_EQ(start->call_id(), 0);
  EXPECT_EQ(start->sample_rate(), 8000u);
  EXPECT_EQ(start->direction(), telestra::v1::AUDIO_DIRECTION_BOTH);
  ASSERT_TRUE(Parse("/ws/audio?account=a&call_id=1&direction=listen").ok());
  EXPECT_EQ(Parse("/ws/audio?account=a&call_id=1&direction=listen")->direction(),
            telestra::v1::AUDIO_DIRECTION_LISTEN);
}

TEST(AudioSocketQueryTest, NamesTheMissingOrBadParameter) {
  EXPECT_EQ(Error("/ws/audio?call_id=1"), "Missing parameter: account");
  EXPECT_EQ(Error("/ws/audio?account=&call_id=1"), "Missing parameter: account");
  EXPECT_EQ(Error("/ws/audio?account=a"), "Missing parameter: call_id");
  for (const char* bad : {"-1", "x", "1.5", "9007199254740993", "99999999999999999999", "+1"}) {
    EXPECT_EQ(Error(std::string("/ws/audio?account=a&call_id=") + bad),
              "Bad parameter call_id: an integer from 0 to 9007199254740992")
        << bad;
  }
  EXPECT_TRUE(Parse("/ws/audio?account=a&call_id=9007199254740992").ok());
  for (const char* bad : {"44100", "8k", "", "08000"}) {
    EXPECT_EQ(Error(std::string("/ws/audio?account=a&call_id=1&rate=") + bad),
              "Bad parameter rate: 8000 or 16000")
        << bad;
  }
  for (const char* bad : {"loud", "LISTEN", ""}) {
    EXPECT_EQ(Error(std::string("/ws/audio?account=a&call_id=1&direction=") + bad),
              "Bad parameter direction: listen, speak or both")
        << bad;
  }
}

TEST(AudioCommandDecoderTest, DecodesMarkAndClear) {
  AudioCommandDecoder decoder;
  absl::StatusOr<CallAudioRequest> mark = decoder.Decode(R"({"cmd":"mark","name":"prompt-1"})");
  ASSERT_TRUE(mark.ok()) << mark.status();
  ASSERT_TRUE(mark->has_mark());
  EXPECT_EQ(mark->mark().name(), "prompt-1");
  absl::StatusOr<CallAudioRequest> clear = decoder.Decode(R"( {"extra":[1,2],"cmd":"clear"} )");
  ASSERT_TRUE(clear.ok()) << clear.status();
  EXPECT_TRUE(clear->has_clear());
  absl::StatusOr<CallAudioRequest> empty_name = decoder.Decode(R"({"cmd":"mark","name":""})");
  ASSERT_TRUE(empty_name.ok());
  EXPECT_EQ(empty_name->mark().name(), "");
  const std::string longest(kMaxAudioMarkNameBytes, 'n');
  absl::StatusOr<CallAudioRequest> long_name =
      decoder.Decode(R"({"cmd":"mark","name":")" + longest + R"("})");
  ASSERT_TRUE(long_name.ok());
  EXPECT_EQ(long_name->mark().name(), longest);
}

TEST(AudioCommandDecoderTest, RefusesWhatIsNotACommandWithTheDocumentedText) {
  AudioCommandDecoder decoder;
  auto error = [&](const std::string& text) {
    absl::StatusOr<CallAudioRequest> request = decoder.Decode(text);
    EXPECT_FALSE(request.ok()) << text;
    EXPECT_EQ(request.status().code(), absl::StatusCode::kInvalidArgument);
    return std::string(request.status().message());
  };
  EXPECT_TRUE(absl::StartsWith(error("{"), "Malformed JSON: ")) << error("{");
  EXPECT_TRUE(absl::StartsWith(error(""), "Malformed JSON: "));
  EXPECT_TRUE(absl::StartsWith(error(R"({"cmd":"clear"} {"cmd":"clear"})"), "Malformed JSON: "));
  EXPECT_EQ(error("[1]"), "Malformed JSON: a command is a JSON object");
  EXPECT_EQ(error("{}"), "Missing field: cmd");
  EXPECT_EQ(error(R"({"cmd":3})"), "Field cmd must be a string");
  EXPECT_EQ(error(R"({"cmd":"dance"})"), "Unknown command: dance");
  EXPECT_EQ(error(R"({"cmd":")" + std::string(100, 'x') + R"("})"),
            "Unknown command: " + std::string(64, 'x') + "...");
  EXPECT_EQ(error(R"({"cmd":"mark"})"), "Missing field: name");
  EXPECT_EQ(error(R"({"cmd":"mark","name":7})"), "Field name must be a string");
  EXPECT_EQ(error(R"({"cmd":"mark","name":")" + std::string(kMaxAudioMarkNameBytes + 1, 'n') +
                  R"("})"),
            "Field name is too long (at most 256 bytes)");
  // The decoder is still usable after errors.
  EXPECT_TRUE(decoder.Decode(R"({"cmd":"clear"})").ok());
}

TEST(AudioEventTest, EncodesEveryEventAsDocumented) {
  CallAudioResponse started;
  started.mutable_started()->set_account("account-1");
  started.mutable_started()->set_call_id(0);
  started.mutable_started()->set_sample_rate(8000);
  started.mutable_started()->set_codec("PCMU");
  started.mutable_started()->set_direction(telestra::v1::AUDIO_DIRECTION_BOTH);
  EXPECT_EQ(EncodeAudioEvent(started),
            R"({"event":"audio-started","account":"account-1","call_id":0,"sample_rate":8000,)"
            R"("codec":"PCMU","direction":"both"})");
  CallAudioResponse mark;
  mark.mutable_mark()->set_name("say \"hi\"\n");
  EXPECT_EQ(EncodeAudioEvent(mark), R"({"event":"mark","name":"say \"hi\"\n"})");
  CallAudioResponse dtmf;
  dtmf.mutable_dtmf()->set_digit("5");
  dtmf.mutable_dtmf()->set_duration_ms(100);
  EXPECT_EQ(EncodeAudioEvent(dtmf), R"({"event":"dtmf","digit":"5","duration_ms":100})");
  CallAudioResponse stopped;
  stopped.mutable_stopped()->set_reason("Call ended");
  stopped.mutable_stopped()->set_frames_dropped(3);
  stopped.mutable_stopped()->set_underruns(4);
  stopped.mutable_stopped()->set_frames_sent(50);
  stopped.mutable_stopped()->set_frames_spoken(7);
  EXPECT_EQ(EncodeAudioEvent(stopped),
            R"({"event":"audio-stopped","reason":"Call ended","frames_dropped":3,"underruns":4,)"
            R"("frames_sent":50,"frames_spoken":7})");
  CallAudioResponse audio;
  audio.mutable_audio()->set_pcm(std::string(320, '\0'));
  EXPECT_EQ(EncodeAudioEvent(audio), "");
  EXPECT_EQ(EncodeAudioEvent(CallAudioResponse()), "");
}

TEST(AudioEventTest, FailCarriesTheErrorAsValidJsonText) {
  EXPECT_EQ(EncodeAudioFail("Unknown command: x"),
            R"({"event":"fail","error":"Unknown command: x"})");
  // Bytes that are not UTF-8 never reach the client as such.
  EXPECT_EQ(EncodeAudioFail("bad \xff\xfe"), R"({"event":"fail","error":"bad ??"})");
}

}  // namespace
}  // namespace telestra::gateway
