// What errors quote: a client's value at most kMaxEchoBytes of it, a whole message at most
// kMaxErrorMessageBytes, and a model's error without the server's filesystem paths.
#include <gtest/gtest.h>

#include <string>

#include "kiln/http/errors.h"
#include "kiln/http/model_acquire.h"

namespace kiln::http {
namespace {

TEST(EchoValue, ShortValuesAreQuotedWholeLongOnesCutAtACharacter) {
  EXPECT_EQ(echo_value("tiny"), "tiny");
  std::string big(300, 'x');
  EXPECT_EQ(echo_value(big), std::string(256, 'x') + "\u2026 (300 bytes)");
  // A cut never splits a UTF-8 character.
  std::string accents;
  for (int i = 0; i < 200; ++i) accents += "\xC3\xA9";  // é
  std::string cut = echo_value(accents);
  EXPECT_EQ(cut.substr(0, 256), accents.substr(0, 256));
  EXPECT_EQ(echo_value(accents, 255).substr(0, 254 + 3), accents.substr(0, 254) + "\u2026");
}

TEST(EchoValue, AnErrorBodyIsBoundedWhateverItsMessage) {
  ApiError e = error_with_status(404, "The model `" + std::string(1 << 20, 'm') + "` does not exist.");
  std::string body = error_body(e);
  EXPECT_LT(body.size(), kMaxErrorMessageBytes + 200);
}

TEST(ClientFacingMessage, PathsStayOnTheServer) {
  EXPECT_EQ(client_facing_message("/srv/models/tiny/config.json: invalid JSON at line 3", "tiny", "/srv/models/tiny/"),
            "tiny/config.json: invalid JSON at line 3");
  EXPECT_EQ(client_facing_message("no chat template in /home/u/.cache/hf/snapshots/abc (tokenizer_config.json)",
                                  "org/model"),
            "no chat template in abc (tokenizer_config.json)");
  EXPECT_EQ(client_facing_message("cannot map [/data/x/model.safetensors]: No such file", "m"),
            "cannot map [model.safetensors]: No such file");
  // The client's own name goes back as sent (shortened when long), even when it looks like a path.
  EXPECT_EQ(client_facing_message("The model `/etc/passwd` does not exist.", "/etc/passwd"),
            "The model `/etc/passwd` does not exist.");
  const std::string huge(1 << 20, 'n');
  std::string m = client_facing_message("The model `" + huge + "` does not exist.", huge);
  EXPECT_LT(m.size(), 400u);
  EXPECT_NE(m.find("does not exist"), std::string::npos);
  // URLs and relative names are not paths.
  EXPECT_EQ(client_facing_message("see https://huggingface.co/org/name and org/name", "x"),
            "see https://huggingface.co/org/name and org/name");
}

}  // namespace
}  // namespace kiln::http
