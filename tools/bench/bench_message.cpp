#include "tools/bench/bench_message.hpp"

#include <algorithm>
#include <array>
#include <string_view>

namespace imapav::bench {
namespace {

constexpr std::size_t kBase64LineChars = 76;
constexpr std::string_view kBoundary = "=_imapav_bench_7f3a91c2";
constexpr std::string_view kStampPlaceholder = "00000000000000000000000000000000";
static_assert(kStampPlaceholder.size() == kStampLength);

// splitmix64: fast, good enough to make incompressible attachment bytes.
struct SplitMix {
  std::uint64_t state;
  std::uint64_t next() {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
};

void appendBase64Lines(std::string& out, std::string_view data) {
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::size_t lineChars = 0;
  const auto put = [&](char c) {
    out.push_back(c);
    if (++lineChars == kBase64LineChars) {
      out.append("\r\n");
      lineChars = 0;
    }
  };
  std::size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    const auto b0 = static_cast<unsigned char>(data[i]);
    const auto b1 = static_cast<unsigned char>(data[i + 1]);
    const auto b2 = static_cast<unsigned char>(data[i + 2]);
    put(kAlphabet[b0 >> 2]);
    put(kAlphabet[((b0 & 0x03u) << 4) | (b1 >> 4)]);
    put(kAlphabet[((b1 & 0x0fu) << 2) | (b2 >> 6)]);
    put(kAlphabet[b2 & 0x3fu]);
  }
  if (i < data.size()) {
    const auto b0 = static_cast<unsigned char>(data[i]);
    const unsigned b1 = i + 1 < data.size() ? static_cast<unsigned char>(data[i + 1]) : 0u;
    put(kAlphabet[b0 >> 2]);
    put(kAlphabet[((b0 & 0x03u) << 4) | (b1 >> 4)]);
    put(i + 1 < data.size() ? kAlphabet[(b1 & 0x0fu) << 2] : '=');
    put('=');
  }
  if (lineChars != 0) out.append("\r\n");
}

// Appends the placeholder and remembers where it is.
void appendStamp(BenchMessage& message) {
  message.stampOffsets.push_back(message.bytes.size());
  message.bytes.append(kStampPlaceholder);
}

constexpr std::array<std::string_view, 6> kSentences = {
    "Please find attached the figures we discussed on Tuesday's call. ",
    "The totals in the second sheet still need a review by the finance team. ",
    "Let me know if anything is missing before Friday, so I can update the report. ",
    "The meeting room on the third floor is booked from ten until noon. ",
    "I have copied the notes from the workshop below for everyone who missed it. ",
    "Thanks again for the quick turnaround on the last batch of changes. ",
};

}  // namespace

std::string eicar() {
  // Two halves so that neither this file nor the binary's strings hold the whole string.
  std::string text = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR";
  text += "-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
  return text;
}

BenchMessage makeMessage(std::size_t size, std::uint64_t seed, bool infected) {
  SplitMix rng{seed};
  BenchMessage m;
  std::string& out = m.bytes;
  out.reserve(size + 4096);
  out.append(
      "Return-Path: <alice@example.org>\r\n"
      "Received: from mail.example.org (mail.example.org [192.0.2.10])\r\n"
      "\tby mx.example.net (Postfix) with ESMTPS id 4Xb2kQ0Jz9z1; Mon, 3 Jun 2024 09:14:07 +0200\r\n"
      "From: Alice Example <alice@example.org>\r\n"
      "To: Bob Example <bob@example.net>\r\n"
      "Subject: Quarterly figures and workshop notes\r\n"
      "Date: Mon, 3 Jun 2024 09:14:05 +0200\r\n"
      "Message-ID: <");
  appendStamp(m);
  out.append(
      "@mail.example.org>\r\n"
      "MIME-Version: 1.0\r\n"
      "Content-Type: multipart/mixed; boundary=\"");
  out.append(kBoundary).append("\"\r\n\r\nThis is a multi-part message in MIME format.\r\n\r\n--");
  out.append(kBoundary).append(
      "\r\nContent-Type: text/plain; charset=utf-8\r\n"
      "Content-Transfer-Encoding: 7bit\r\n\r\n"
      "Hello Bob,\r\n\r\nReference: ");
  appendStamp(m);
  out.append("\r\n\r\n");
  // About 2% of the message (at least a paragraph, at most 16 KB) is text.
  const std::size_t textBytes = std::clamp<std::size_t>(size / 50, 300, 16 * 1024);
  std::size_t lineLength = 0;
  for (std::size_t written = 0; written < textBytes;) {
    const auto sentence = kSentences[rng.next() % kSentences.size()];
    if (lineLength + sentence.size() > 78) {
      out.append("\r\n");
      lineLength = 0;
    }
    out.append(sentence);
    lineLength += sentence.size();
    written += sentence.size();
  }
  out.append("\r\n\r\nBest regards,\r\nAlice\r\n\r\n--");
  out.append(kBoundary).append(
      "\r\nContent-Type: application/octet-stream; name=\"figures-q2.bin\"\r\n"
      "Content-Transfer-Encoding: base64\r\n"
      "Content-Disposition: attachment; filename=\"figures-q2.bin\"\r\n\r\n");

  // The attachment fills the rest: each 78 bytes of base64 lines carry 57 raw bytes.
  const std::size_t trailer = kBoundary.size() + 8;
  const std::size_t room = size > out.size() + trailer ? size - out.size() - trailer : 0;
  const std::size_t rawBytes = std::max<std::size_t>(room / 78 * 57, 3 * 57);
  std::string raw;
  raw.reserve(rawBytes + 8);
  if (infected) raw.append(eicar()).append("\r\n");
  while (raw.size() < rawBytes) {
    const std::uint64_t word = rng.next();
    for (int b = 0; b < 8 && raw.size() < rawBytes; ++b) {
      raw.push_back(static_cast<char>((word >> (8 * b)) & 0xffu));
    }
  }
  const std::size_t attachmentStart = out.size();
  appendBase64Lines(out, raw);
  // The attachment's stamp goes on its third line, clear of the EICAR bytes at its start;
  // base64 decoding turns it into bytes that differ per request.
  m.stampOffsets.push_back(attachmentStart + 2 * (kBase64LineChars + 2));
  out.append("--").append(kBoundary).append("--\r\n");
  return m;
}

void stamp(BenchMessage& message, std::uint64_t runId, std::uint64_t sequence) {
  static constexpr std::string_view kHex = "0123456789abcdef";
  std::array<char, kStampLength> token{};
  for (std::size_t i = 0; i < 16; ++i) {
    token[i] = kHex[(runId >> (60 - 4 * i)) & 0xfu];
    token[16 + i] = kHex[(sequence >> (60 - 4 * i)) & 0xfu];
  }
  for (const std::size_t offset : message.stampOffsets) {
    std::copy(token.begin(), token.end(), message.bytes.begin() + static_cast<std::ptrdiff_t>(offset));
  }
}

}  // namespace imapav::bench
