#pragma once

// Test inputs built at run time, shared by unit and integration tests: the EICAR string (never stored whole in the repository),
// stored-method zip archives and MIME messages.

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace imapav::test {

inline std::string eicar() {
  // Two halves, so no file in the repository holds the test string itself.
  std::string text = R"(X5O!P%@AP[4\PZX54(P^)7CC)7}$)";
  text += "EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
  return text;
}

inline constexpr std::string_view kMarker = "IMAPAV-TEST-VIRUS-MARKER";
inline constexpr std::string_view kSecondMarker = "IMAPAV-TEST-VIRUS-SECOND";
inline constexpr std::string_view kEicarName = "Eicar-Test-Signature.UNOFFICIAL";
inline constexpr std::string_view kMarkerName = "Imapav.Test.Marker.UNOFFICIAL";
inline constexpr std::string_view kSecondName = "Imapav.Test.Second.UNOFFICIAL";

inline std::string signaturesDir() { return IMAPAV_SOURCE_DIR "/tests/data/signatures"; }

inline std::uint32_t crc32(std::string_view data) {
  std::uint32_t crc = 0xffffffffU;
  for (const char c : data) {
    crc ^= static_cast<unsigned char>(c);
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc & 1U) != 0 ? (crc >> 1) ^ 0xedb88320U : crc >> 1;
    }
  }
  return ~crc;
}

inline void putLe(std::string& out, std::uint32_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) {
    out.push_back(static_cast<char>((value >> (8 * i)) & 0xffU));
  }
}

struct ZipEntry {
  std::string name;
  std::string data;
};

// A zip with stored (uncompressed) members. encryptedFlag sets general-purpose bit 0 in
// both headers, which is how readers recognise traditional PKWARE encryption.
inline std::string makeZip(const std::vector<ZipEntry>& entries, bool encryptedFlag = false) {
  const std::uint32_t flags = encryptedFlag ? 1U : 0U;
  std::string out;
  std::string central;
  for (const auto& entry : entries) {
    const auto offset = static_cast<std::uint32_t>(out.size());
    const std::uint32_t crc = crc32(entry.data);
    const auto size = static_cast<std::uint32_t>(entry.data.size());
    const auto nameSize = static_cast<std::uint32_t>(entry.name.size());
    putLe(out, 0x04034b50U, 4);
    putLe(out, 20, 2);      // version needed
    putLe(out, flags, 2);
    putLe(out, 0, 2);       // method: stored
    putLe(out, 0, 2);       // time
    putLe(out, 0x21, 2);    // date: 1980-01-01
    putLe(out, crc, 4);
    putLe(out, size, 4);
    putLe(out, size, 4);
    putLe(out, nameSize, 2);
    putLe(out, 0, 2);       // extra
    out += entry.name;
    out += entry.data;

    putLe(central, 0x02014b50U, 4);
    putLe(central, 20, 2);  // version made by
    putLe(central, 20, 2);  // version needed
    putLe(central, flags, 2);
    putLe(central, 0, 2);
    putLe(central, 0, 2);
    putLe(central, 0x21, 2);
    putLe(central, crc, 4);
    putLe(central, size, 4);
    putLe(central, size, 4);
    putLe(central, nameSize, 2);
    putLe(central, 0, 2);   // extra
    putLe(central, 0, 2);   // comment
    putLe(central, 0, 2);   // disk
    putLe(central, 0, 2);   // internal attributes
    putLe(central, 0, 4);   // external attributes
    putLe(central, offset, 4);
    central += entry.name;
  }
  const auto centralOffset = static_cast<std::uint32_t>(out.size());
  const auto count = static_cast<std::uint32_t>(entries.size());
  out += central;
  putLe(out, 0x06054b50U, 4);
  putLe(out, 0, 2);
  putLe(out, 0, 2);
  putLe(out, count, 2);
  putLe(out, count, 2);
  putLe(out, static_cast<std::uint32_t>(central.size()), 4);
  putLe(out, centralOffset, 4);
  putLe(out, 0, 2);
  return out;
}

inline std::string base64Lines(std::string_view data) {
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t lineLength = 0;
  for (std::size_t i = 0; i < data.size(); i += 3) {
    std::uint32_t chunk = static_cast<std::uint32_t>(static_cast<unsigned char>(data[i])) << 16;
    const std::size_t have = std::min<std::size_t>(3, data.size() - i);
    if (have > 1) {
      chunk |= static_cast<std::uint32_t>(static_cast<unsigned char>(data[i + 1])) << 8;
    }
    if (have > 2) {
      chunk |= static_cast<std::uint32_t>(static_cast<unsigned char>(data[i + 2]));
    }
    out.push_back(kAlphabet[(chunk >> 18) & 63U]);
    out.push_back(kAlphabet[(chunk >> 12) & 63U]);
    out.push_back(have > 1 ? kAlphabet[(chunk >> 6) & 63U] : '=');
    out.push_back(have > 2 ? kAlphabet[chunk & 63U] : '=');
    lineLength += 4;
    if (lineLength >= 76) {
      out += "\r\n";
      lineLength = 0;
    }
  }
  if (lineLength > 0) {
    out += "\r\n";
  }
  return out;
}

// A multipart/mixed message: a text part, then one base64 attachment.
inline std::string mimeMessage(std::string_view text, std::string_view attachmentName,
                               std::string_view attachment) {
  std::string message =
      "From: alice@example.com\r\n"
      "To: bob@example.com\r\n"
      "Subject: test\r\n"
      "MIME-Version: 1.0\r\n"
      "Content-Type: multipart/mixed; boundary=\"=_imapav_boundary\"\r\n"
      "\r\n"
      "--=_imapav_boundary\r\n"
      "Content-Type: text/plain; charset=us-ascii\r\n"
      "\r\n";
  message += text;
  message +=
      "\r\n--=_imapav_boundary\r\n"
      "Content-Type: application/octet-stream; name=\"";
  message += attachmentName;
  message +=
      "\"\r\n"
      "Content-Transfer-Encoding: base64\r\n"
      "Content-Disposition: attachment; filename=\"";
  message += attachmentName;
  message += "\"\r\n\r\n";
  message += base64Lines(attachment);
  message += "--=_imapav_boundary--\r\n";
  return message;
}

}  // namespace imapav::test
