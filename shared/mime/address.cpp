#include "shared/mime/address.hpp"

namespace imapav::mime {

namespace {

enum class Kind {
  kWord,           // atom or dot-atom text
  kQuoted,         // "..." including the quotes
  kDomainLiteral,  // [...] including the brackets
  kGap,            // white space or a comment
  kSpecial,        // one of < > , : ; @
};

struct Token {
  Kind kind;
  std::string_view text;
  bool bad = false;  // unterminated, or holds control characters: never part of a result
};

bool isSpecial(char c) {
  return c == '<' || c == '>' || c == ',' || c == ':' || c == ';' || c == '@';
}

bool isControl(char c) {
  const auto u = static_cast<unsigned char>(c);
  return (u < 32 && c != '\t') || u == 127;
}

bool isGapChar(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u <= 32 || u == 127;
}

bool isWordChar(char c) {
  return !isGapChar(c) && !isSpecial(c) && c != '"' && c != '(' && c != ')' && c != '[' &&
         c != ']' && c != '\\';
}

// Index just past a delimited run starting at value[i] (an opening quote or bracket), with
// backslash escapes; sets terminated. Comments nest, quoted strings and literals do not.
std::size_t skipDelimited(std::string_view value, std::size_t i, char open, char close,
                          bool nests, bool& terminated) {
  int depth = 0;
  for (; i < value.size(); ++i) {
    const char c = value[i];
    if (c == '\\') {
      ++i;
      continue;
    }
    if (c == open && (nests || depth == 0)) {
      ++depth;
    } else if (c == close) {
      if (--depth == 0) {
        terminated = true;
        return i + 1;
      }
    }
  }
  terminated = false;
  return value.size();
}

std::vector<Token> tokenize(std::string_view value) {
  std::vector<Token> tokens;
  std::size_t i = 0;
  while (i < value.size()) {
    const char c = value[i];
    const std::size_t start = i;
    bool terminated = true;
    if (c == '(') {
      i = skipDelimited(value, i, '(', ')', true, terminated);
      tokens.push_back({Kind::kGap, value.substr(start, i - start)});
    } else if (c == '"') {
      // Same open and close character: the first quote opens, the next closes.
      i = skipDelimited(value, i, '"', '"', false, terminated);
      const std::string_view text = value.substr(start, i - start);
      bool bad = !terminated;
      for (const char q : text) bad = bad || isControl(q);
      tokens.push_back({Kind::kQuoted, text, bad});
    } else if (c == '[') {
      i = skipDelimited(value, i, '[', ']', false, terminated);
      const std::string_view text = value.substr(start, i - start);
      bool bad = !terminated;
      for (const char q : text) bad = bad || isControl(q) || q == ' ';
      tokens.push_back({Kind::kDomainLiteral, text, bad});
    } else if (isSpecial(c)) {
      tokens.push_back({Kind::kSpecial, value.substr(i, 1)});
      ++i;
    } else if (isWordChar(c)) {
      while (i < value.size() && isWordChar(value[i])) ++i;
      tokens.push_back({Kind::kWord, value.substr(start, i - start)});
    } else {
      // White space, controls, and stray ')' ']' '\\' separate words.
      ++i;
      tokens.push_back({Kind::kGap, value.substr(start, 1)});
    }
  }
  return tokens;
}

bool isSpecialToken(const Token& t, char c) {
  return t.kind == Kind::kSpecial && t.text.size() == 1 && t.text[0] == c;
}

// The addr-spec that a run of tokens without gaps or specials (but '@') forms, or "".
std::string addrSpec(const std::vector<const Token*>& chunk) {
  std::size_t at = chunk.size();
  for (std::size_t k = 0; k < chunk.size(); ++k) {
    const Token& t = *chunk[k];
    if (t.bad) return {};
    if (isSpecialToken(t, '@')) {
      if (at != chunk.size()) return {};  // two '@'
      at = k;
    }
  }
  if (at == chunk.size() || at == 0 || at + 1 == chunk.size()) return {};
  for (std::size_t k = 0; k < at; ++k) {
    if (chunk[k]->kind != Kind::kWord && chunk[k]->kind != Kind::kQuoted) return {};
  }
  for (std::size_t k = at + 1; k < chunk.size(); ++k) {
    if (chunk[k]->kind != Kind::kWord && chunk[k]->kind != Kind::kDomainLiteral) return {};
  }
  std::string out;
  for (const Token* t : chunk) out += t->text;
  return out;
}

// The first addr-spec among tokens: gaps next to '@' are folding white space and ignored,
// other gaps and specials split the tokens into candidate chunks.
std::string firstAddrSpec(const std::vector<const Token*>& tokens) {
  std::vector<const Token*> chunk;
  // nextSolid[k]: the first token after k that is not a gap, or nullptr. Looking it up by
  // a scan from each gap took time quadratic in a run of white space: 64 KiB of spaces in
  // a To field kept a scan thread busy for seconds (found by a complexity probe).
  std::vector<const Token*> nextSolid(tokens.size(), nullptr);
  const Token* solid = nullptr;
  for (std::size_t k = tokens.size(); k-- > 0;) {
    nextSolid[k] = solid;
    if (tokens[k]->kind != Kind::kGap) solid = tokens[k];
  }
  for (std::size_t k = 0; k < tokens.size(); ++k) {
    const Token& t = *tokens[k];
    bool split = false;
    if (t.kind == Kind::kGap) {
      const Token* next = nextSolid[k];
      const bool nearAt = (!chunk.empty() && isSpecialToken(*chunk.back(), '@')) ||
                          (next != nullptr && isSpecialToken(*next, '@'));
      if (nearAt) continue;
      split = true;
    } else if (t.kind == Kind::kSpecial && !isSpecialToken(t, '@')) {
      split = true;
    }
    if (split) {
      if (std::string a = addrSpec(chunk); !a.empty()) return a;
      chunk.clear();
      continue;
    }
    chunk.push_back(&t);
  }
  return addrSpec(chunk);
}

}  // namespace

std::vector<std::string> extractAddresses(std::string_view value, std::size_t maxAddresses) {
  std::vector<std::string> out;
  if (maxAddresses == 0) return out;
  const std::vector<Token> tokens = tokenize(value);

  // One list entry: its tokens outside angle brackets, and those of its first angle-addr.
  std::vector<const Token*> item;
  std::vector<const Token*> angle;
  bool hasAngle = false;
  bool inAngle = false;

  const auto finishItem = [&] {
    std::string a;
    if (hasAngle) {
      // Obsolete route "@relay1,@relay2:user@x": the addr-spec follows the last ':'.
      std::size_t from = 0;
      for (std::size_t k = 0; k < angle.size(); ++k) {
        if (isSpecialToken(*angle[k], ':')) from = k + 1;
      }
      a = firstAddrSpec(std::vector<const Token*>(angle.begin() + static_cast<std::ptrdiff_t>(from),
                                                  angle.end()));
    } else {
      a = firstAddrSpec(item);
    }
    if (!a.empty()) out.push_back(std::move(a));
    item.clear();
    angle.clear();
    hasAngle = false;
    inAngle = false;
  };

  for (const Token& t : tokens) {
    if (out.size() >= maxAddresses) break;
    if (inAngle) {
      if (isSpecialToken(t, '>')) {
        inAngle = false;
      } else {
        angle.push_back(&t);
      }
      continue;
    }
    if (isSpecialToken(t, '<')) {
      // Only the first angle-addr of an entry counts; a second one is ignored.
      inAngle = !hasAngle;
      hasAngle = true;
      continue;
    }
    if (isSpecialToken(t, ',') || isSpecialToken(t, ';')) {
      finishItem();
    } else if (isSpecialToken(t, ':')) {
      // "group-name:" - what came before was the group's display name.
      item.clear();
    } else {
      item.push_back(&t);
    }
  }
  if (out.size() < maxAddresses) finishItem();
  return out;
}

}  // namespace imapav::mime
