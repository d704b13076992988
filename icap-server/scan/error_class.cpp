#include "icap-server/scan/error_class.hpp"

#include <array>
#include <utility>

namespace imapav::scan {
namespace {

constexpr std::array<std::pair<ErrorClass, std::string_view>, kErrorClassCount> kNames{{
    {ErrorClass::None, "none"},
    {ErrorClass::TooLarge, "too_large"},
    {ErrorClass::Timeout, "timeout"},
    {ErrorClass::Corrupt, "corrupt"},
    {ErrorClass::Encrypted, "encrypted"},
    {ErrorClass::ArchiveLimit, "archive_limit"},
    {ErrorClass::EngineNotReady, "engine_not_ready"},
    {ErrorClass::OutOfResources, "out_of_resources"},
    {ErrorClass::Overloaded, "overloaded"},
    {ErrorClass::Internal, "internal"},
    {ErrorClass::Fragmented, "fragmented"},
}};

}  // namespace

std::string_view toString(ErrorClass errorClass) {
  for (const auto& [value, name] : kNames) {
    if (value == errorClass) {
      return name;
    }
  }
  return "internal";
}

std::optional<ErrorClass> errorClassFromString(std::string_view name) {
  for (const auto& [value, text] : kNames) {
    if (text == name) {
      return value;
    }
  }
  return std::nullopt;
}

}  // namespace imapav::scan
