// The gateway's own SDP offer/answer (backend/sip/sdp_offer_answer.h):
// what its offers and answers say, and what it reads from the far end's.
#include "backend/sip/sdp_offer_answer.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace telestra::backend {
namespace {

using ::testing::ElementsAre;

// A far-end SDP: session lines, then `media` (lines joined with CRLF).
std::string Remote(const std::vector<std::string>& media, const std::string& session_extra = "") {
  std::string sdp = "v=0\r\no=peer 1 1 IN IP4 127.0.0.9\r\ns=-\r\nc=IN IP4 127.0.0.9\r\nt=0 0\r\n";
  absl::StrAppend(&sdp, session_extra);
  for (const std::string& line : media) absl::StrAppend(&sdp, line, "\r\n");
  return sdp;
}

RemoteSdp Parse(const std::string& sdp) {
  absl::StatusOr<RemoteSdp> parsed = ParseRemoteSdp(sdp);
  EXPECT_TRUE(parsed.ok()) << parsed.status() << "\n" << sdp;
  return parsed.ok() ? *parsed : RemoteSdp{};
}

TEST(SdpOfferAnswerTest, OfferListsThePlansCodecsAndTelephoneEventAndParsesBack) {
  SdpWriter writer("127.0.0.1", {"PCMU", "PCMA"});
  std::string body = writer.OfferBody(20000, /*hold=*/false);
  EXPECT_EQ(body,
            "s=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            "m=audio 20000 RTP/AVP 0 8 101\r\n"
            "a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
            "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\n");
  std::string sdp = writer.Compose(77, 3, body);
  EXPECT_TRUE(absl::StartsWith(sdp, "v=0\r\no=- 77 3 IN IP4 127.0.0.1\r\ns=-\r\n")) << sdp;

  // Our own offer, read as the far end reads it.
  RemoteSdp back = Parse(sdp);
  EXPECT_EQ(back.audio_index, 0);
  EXPECT_EQ(back.audio.address, "127.0.0.1");
  EXPECT_EQ(back.audio.port, 20000);
  EXPECT_THAT(back.audio.payload_types, ElementsAre(0, 8));
  EXPECT_EQ(back.audio.telephone_event, 101);
  EXPECT_EQ(back.audio.telephone_event_fmtp, "0-15");
  EXPECT_TRUE(back.audio.sends);
  EXPECT_TRUE(back.audio.receives);
}

TEST(SdpOfferAnswerTest, HoldOfferIsSendonlyAndThePlansOrderIsKept) {
  SdpWriter writer("::1", {"PCMA", "PCMU"});
  std::string body = writer.OfferBody(20002, /*hold=*/true);
  EXPECT_TRUE(absl::StrContains(body, "c=IN IP6 ::1\r\n")) << body;
  EXPECT_TRUE(absl::StrContains(body, "m=audio 20002 RTP/AVP 8 0 101\r\n")) << body;
  EXPECT_TRUE(absl::EndsWith(body, "a=sendonly\r\n")) << body;
  RemoteSdp back = Parse(writer.Compose(1, 1, body));
  EXPECT_TRUE(back.audio.sends);
  EXPECT_FALSE(back.audio.receives);
}

TEST(SdpOfferAnswerTest, ParseReadsStaticCodecsMediaAddressAndDirections) {
  // Static payload types without rtpmap lines; a media-level c= wins.
  RemoteSdp sdp = Parse(Remote({"m=audio 4000 RTP/AVP 8 18 0", "c=IN IP4 127.0.0.7"}));
  EXPECT_EQ(sdp.audio.address, "127.0.0.7");
  EXPECT_THAT(sdp.audio.payload_types, ElementsAre(8, 0));  // G.729 is not ours
  EXPECT_EQ(sdp.audio.telephone_event, -1);

  struct Case {
    std::string attribute;
    bool sends, receives;
  };
  for (const Case& c : std::vector<Case>{{"a=sendrecv", true, true},
                                         {"a=sendonly", true, false},
                                         {"a=recvonly", false, true},
                                         {"a=inactive", false, false}}) {
    RemoteSdp parsed = Parse(Remote({"m=audio 4000 RTP/AVP 0", c.attribute}));
    EXPECT_EQ(parsed.audio.sends, c.sends) << c.attribute;
    EXPECT_EQ(parsed.audio.receives, c.receives) << c.attribute;
  }
  // A session-level direction applies to the stream.
  RemoteSdp session_hold = Parse(Remote({"m=audio 4000 RTP/AVP 0"}, "a=sendonly\r\n"));
  EXPECT_FALSE(session_hold.audio.receives);
  // RFC 2543 hold: c= 0.0.0.0.
  RemoteSdp old_hold = Parse(Remote({"m=audio 4000 RTP/AVP 0", "c=IN IP4 0.0.0.0"}));
  EXPECT_TRUE(old_hold.audio.sends);
  EXPECT_FALSE(old_hold.audio.receives);
}

TEST(SdpOfferAnswerTest, ParseFindsTheFirstLiveAudioStreamAmongOthers) {
  RemoteSdp sdp =
      Parse(Remote({"m=video 5000 RTP/AVP 96", "a=rtpmap:96 H264/90000", "m=audio 0 RTP/AVP 0",
                    "m=audio 4002 RTP/AVP 96 0", "a=rtpmap:96 PCMU/8000",
                    "a=rtpmap:97 telephone-event/8000", "m=audio 4004 RTP/AVP 0"}));
  EXPECT_EQ(sdp.audio_index, 2);
  EXPECT_EQ(sdp.audio.port, 4002);
  // PCMU on a dynamic payload type is not carried by the media engine.
  EXPECT_THAT(sdp.audio.payload_types, ElementsAre(0));
  ASSERT_EQ(sdp.rejected_lines.size(), 4u);
  EXPECT_EQ(sdp.rejected_lines[0], "m=video 0 RTP/AVP 96\r\n");
  EXPECT_EQ(sdp.rejected_lines[1], "m=audio 0 RTP/AVP 0\r\n");
  EXPECT_EQ(sdp.rejected_lines[3], "m=audio 0 RTP/AVP 0\r\n");
}

TEST(SdpOfferAnswerTest, ParseRejectsWhatIsNotSdp) {
  for (const std::string& bad :
       {std::string(""), std::string("hello"), std::string("v=0\r\nm=audio x RTP/AVP 0\r\n")}) {
    absl::StatusOr<RemoteSdp> parsed = ParseRemoteSdp(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StartsWith(parsed.status().message(), "bad SDP: ")) << parsed.status();
  }
}

// Found by fuzzing (fuzz/corpus/sdp_offer_answer/regression-*): Debian's
// sofia-sip loops forever, allocating, on a non-RTP m= line whose format
// starts with a non-token character; such m= lines never reach it.
TEST(SdpOfferAnswerTest, MalformedMediaLinesAreRefusedBeforeSofiaSeesThem) {
  for (const std::string& m :
       {std::string("m=image 10000 udptl <t38>"), std::string("m=audio 1-0\xff\xff 000 RTP/AVP 0"),
        std::string("m=audio 4000 RTP/AVP 0 /8"), std::string("m=audio 4000 RTP/AVP"),
        std::string("m=audio 4000/ RTP/AVP 0"), std::string("m=audio 4000 RTP/ 0"),
        std::string("m= 4000 RTP/AVP 0"), std::string("m=audio 4000 RTP/AVP 0 \"x\"")}) {
    absl::StatusOr<RemoteSdp> parsed = ParseRemoteSdp(Remote({m}));
    ASSERT_FALSE(parsed.ok()) << m;
    EXPECT_EQ(parsed.status().message(), "bad SDP: malformed m= line") << m;
  }
  constexpr char kWithNul[] = "v=0\r\n\0m=audio 1 RTP/AVP 0\r\n";
  EXPECT_EQ(ParseRemoteSdp(std::string(kWithNul, sizeof(kWithNul) - 1)).status().message(),
            "bad SDP: NUL in the body");
  // Well-formed lines of every shape still parse.
  RemoteSdp sdp = Parse(Remote({"m=image 10000 udptl t38", "m=audio 4000/2 RTP/AVP 0 8",
                                "m=audio 4002 UDP/TLS/RTP/SAVP 0", "m=audio\t4004  RTP/AVP  0"}));
  EXPECT_EQ(sdp.audio.port, 4000);
}

TEST(SdpOfferAnswerTest, AnAudioPortAbove65535IsNoStreamOfOurs) {
  RemoteSdp sdp = Parse(Remote({"m=audio 66346 RTP/AVP 0", "m=audio 4000 RTP/AVP 0"}));
  EXPECT_EQ(sdp.audio_index, 1);
  EXPECT_EQ(sdp.audio.port, 4000);
}

// telephone-event lives on a dynamic payload type (RFC 4733); one on a
// static G.711 type would make the answer list that type twice.
TEST(SdpOfferAnswerTest, TelephoneEventOnAStaticPayloadTypeIsIgnored) {
  RemoteSdp sdp =
      Parse(Remote({"m=audio 20000 RTP/AVP 8 8 0", "a=rtpmap:8 telephone-event/8000"}));
  EXPECT_EQ(sdp.audio.telephone_event, -1);
  SdpWriter writer("127.0.0.1", {"PCMU", "PCMA"});
  AudioSession session;
  absl::StatusOr<std::string> answer = writer.AnswerBody(sdp, 20004, /*hold=*/false, &session);
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_FALSE(absl::StrContains(*answer, "telephone-event")) << *answer;
  EXPECT_TRUE(absl::StrContains(*answer, "m=audio 20004 RTP/AVP 0\r\n")) << *answer;
}

TEST(SdpOfferAnswerTest, AnswerKeepsTheOffersCodecOrderAndTelephoneEvent) {
  SdpWriter writer("127.0.0.1", {"PCMU", "PCMA"});
  RemoteSdp offer = Parse(Remote(
      {"m=audio 4000 RTP/AVP 8 18 0 96", "a=rtpmap:96 telephone-event/8000", "a=fmtp:96 0-16"}));
  AudioSession session;
  absl::StatusOr<std::string> answer = writer.AnswerBody(offer, 20004, /*hold=*/false, &session);
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ(*answer,
            "s=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            "m=audio 20004 RTP/AVP 8 0 96\r\n"
            "a=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n"
            "a=rtpmap:96 telephone-event/8000\r\na=fmtp:96 0-16\r\na=ptime:20\r\n");
  EXPECT_EQ(session.address, "127.0.0.9");
  EXPECT_EQ(session.port, 4000);
  EXPECT_EQ(session.payload_type, 8);
  EXPECT_EQ(session.telephone_event, 96);
  EXPECT_TRUE(session.send);
  EXPECT_TRUE(session.recv);
}

TEST(SdpOfferAnswerTest, AnswerDirectionMirrorsTheOfferAndHoldStopsReceiving) {
  SdpWriter writer("127.0.0.1", {"PCMU"});
  struct Case {
    std::string offered;  // the offer's attribute
    bool hold;
    std::string answered;  // ours ("" = sendrecv)
    bool send, recv;
  };
  for (const Case& c : std::vector<Case>{{"a=sendrecv", false, "", true, true},
                                         {"a=sendonly", false, "a=recvonly", false, true},
                                         {"a=recvonly", false, "a=sendonly", true, false},
                                         {"a=inactive", false, "a=inactive", false, false},
                                         {"a=sendrecv", true, "a=sendonly", true, false},
                                         {"a=sendonly", true, "a=inactive", false, false}}) {
    RemoteSdp offer = Parse(Remote({"m=audio 4000 RTP/AVP 0", c.offered}));
    AudioSession session;
    absl::StatusOr<std::string> answer = writer.AnswerBody(offer, 20006, c.hold, &session);
    ASSERT_TRUE(answer.ok()) << answer.status();
    for (const char* direction : {"a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive"}) {
      EXPECT_EQ(absl::StrContains(*answer, direction), c.answered == direction)
          << c.offered << " hold " << c.hold << ":\n"
          << *answer;
    }
    EXPECT_EQ(session.send, c.send) << c.offered << " hold " << c.hold;
    EXPECT_EQ(session.recv, c.recv) << c.offered << " hold " << c.hold;
  }
}

TEST(SdpOfferAnswerTest, AnswerRejectsTheOtherStreamsInTheirPlaces) {
  SdpWriter writer("127.0.0.1", {"PCMU", "PCMA"});
  RemoteSdp offer = Parse(
      Remote({"m=video 5000 RTP/AVP 96", "a=rtpmap:96 H264/90000", "m=audio 4000 RTP/AVP 0"}));
  AudioSession session;
  absl::StatusOr<std::string> answer = writer.AnswerBody(offer, 20008, false, &session);
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_TRUE(
      absl::StrContains(*answer, "t=0 0\r\nm=video 0 RTP/AVP 96\r\nm=audio 20008 RTP/AVP 0\r\n"))
      << *answer;
  // The answer parses, with the same number of streams as the offer.
  RemoteSdp back = Parse(writer.Compose(1, 1, *answer));
  EXPECT_EQ(back.rejected_lines.size(), 2u);
  EXPECT_EQ(back.audio_index, 1);
}

TEST(SdpOfferAnswerTest, OffersWeCannotAnswerAreRefusedWithTheReason) {
  SdpWriter pcmu_only("127.0.0.1", {"PCMU"});
  AudioSession session;
  RemoteSdp g729 = Parse(Remote({"m=audio 4000 RTP/AVP 18 8"}));
  absl::Status check = pcmu_only.CheckOffer(g729);
  EXPECT_EQ(check.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(check.message(), "the offer has no codec of ours (PCMU)");
  EXPECT_EQ(pcmu_only.AnswerBody(g729, 20010, false, &session).status(), check);

  RemoteSdp video_only = Parse(Remote({"m=video 5000 RTP/AVP 96"}));
  EXPECT_EQ(pcmu_only.CheckOffer(video_only).message(), "the offer has no audio stream");
  RemoteSdp rejected = Parse(Remote({"m=audio 0 RTP/AVP 0"}));
  EXPECT_EQ(pcmu_only.CheckOffer(rejected).message(), "the offer has no audio stream");
  EXPECT_TRUE(pcmu_only.CheckOffer(Parse(Remote({"m=audio 4000 RTP/AVP 8 0"}))).ok());
}

TEST(SdpOfferAnswerTest, FromAnswerTakesTheFirstCodecOfOursAndTheDirection) {
  SdpWriter writer("127.0.0.1", {"PCMU", "PCMA"});
  absl::StatusOr<AudioSession> session = writer.FromAnswer(
      Parse(Remote({"m=audio 4000 RTP/AVP 18 8 0 101", "a=rtpmap:101 telephone-event/8000"})),
      /*hold=*/false);
  ASSERT_TRUE(session.ok()) << session.status();
  EXPECT_EQ(session->payload_type, 8);
  EXPECT_EQ(session->port, 4000);
  EXPECT_EQ(session->address, "127.0.0.9");
  EXPECT_EQ(session->telephone_event, 101);
  EXPECT_TRUE(session->send && session->recv);

  // The answer to our hold offer: recvonly; we send and do not receive.
  session = writer.FromAnswer(Parse(Remote({"m=audio 4000 RTP/AVP 0", "a=recvonly"})), true);
  ASSERT_TRUE(session.ok());
  EXPECT_TRUE(session->send);
  EXPECT_FALSE(session->recv);
  // The far end holds us in its answer: we receive only.
  session = writer.FromAnswer(Parse(Remote({"m=audio 4000 RTP/AVP 0", "a=sendonly"})), false);
  ASSERT_TRUE(session.ok());
  EXPECT_FALSE(session->send);
  EXPECT_TRUE(session->recv);

  EXPECT_EQ(writer.FromAnswer(Parse(Remote({"m=audio 4000 RTP/AVP 18"})), false).status().message(),
            "the answer accepts no codec of our offer");
  EXPECT_EQ(writer.FromAnswer(Parse(Remote({"m=audio 0 RTP/AVP 0"})), false).status().message(),
            "the answer rejects the audio stream");
}

}  // namespace
}  // namespace telestra::backend
