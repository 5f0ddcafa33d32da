// Reading models: Hugging Face config.json import against the shipped YAMLs, and every kind of
// bad input reported as InvalidInput naming the file, the line and the key.
#include <gtest/gtest.h>

#include <string>

#include "models/model.h"
#include "tests/models/input_helpers.h"

namespace cf {
namespace {

using test::expect_invalid;
using test::replace;

// Every field that shapes cost or the executor; the name is compared separately.
void expect_same_architecture(const ModelConfig& a, const ModelConfig& b) {
  EXPECT_EQ(a.architecture, b.architecture);
  EXPECT_EQ(a.hidden, b.hidden);
  EXPECT_EQ(a.ffn_hidden, b.ffn_hidden);
  EXPECT_EQ(a.layers, b.layers);
  EXPECT_EQ(a.heads, b.heads);
  EXPECT_EQ(a.kv_heads, b.kv_heads);
  EXPECT_EQ(a.head_dim, b.head_dim);
  EXPECT_EQ(a.vocab, b.vocab);
  EXPECT_EQ(a.qkv_bias, b.qkv_bias);
  EXPECT_EQ(a.tied_embeddings, b.tied_embeddings);
  EXPECT_EQ(a.rope_theta, b.rope_theta);
  EXPECT_EQ(a.rms_norm_eps, b.rms_norm_eps);
  EXPECT_EQ(a.max_position, b.max_position);
  EXPECT_EQ(a.params_total(), b.params_total());
}

TEST(HfImportTest, ConfigJsonGivesTheSameModelAsTheYaml) {
  const std::pair<const char*, const char*> pairs[] = {
      {"tests/models/data/qwen2.5-7b.config.json", "qwen2.5-7b"},
      {"tests/models/data/qwen2.5-0.5b.config.json", "qwen2.5-0.5b"},
      {"tests/models/data/llama3-8b.config.json", "llama3-8b"}};
  for (const auto& [json_path, name] : pairs) {
    SCOPED_TRACE(json_path);
    StatusOr<ModelConfig> imported = load_model(json_path);
    ASSERT_TRUE(imported.ok()) << imported.status().message();
    StatusOr<ModelConfig> shipped = load_model(name);
    ASSERT_TRUE(shipped.ok()) << shipped.status().message();
    expect_same_architecture(*imported, *shipped);
    EXPECT_EQ(imported->name, std::string(name) + ".config");  // the file stem
  }
}

TEST(HfImportTest, NameComesFromNameOrPathOrTheSnapshotFolder) {
  const std::string body = R"("architectures": ["LlamaForCausalLM"], "hidden_size": 64,
      "intermediate_size": 160, "num_hidden_layers": 2, "num_attention_heads": 4,
      "vocab_size": 256})";
  StatusOr<ModelConfig> named =
      import_hf_config(R"({"_name_or_path": "org/some-model", )" + body, "x/config.json");
  ASSERT_TRUE(named.ok()) << named.status().message();
  EXPECT_EQ(named->name, "org/some-model");
  StatusOr<ModelConfig> folder = import_hf_config("{" + body, "snapshots/Tiny-Llama/config.json");
  ASSERT_TRUE(folder.ok()) << folder.status().message();
  EXPECT_EQ(folder->name, "Tiny-Llama");
  // transformers' LlamaConfig defaults for the keys left out.
  EXPECT_EQ(folder->kv_heads, 4);
  EXPECT_EQ(folder->head_dim, 16);
  EXPECT_FALSE(folder->tied_embeddings);
  EXPECT_EQ(folder->rope_theta, 10000.0);
  EXPECT_EQ(folder->max_position, 2048);
}

const char* kQwenJson = R"({
  "architectures": ["Qwen2ForCausalLM"],
  "hidden_size": 64, "intermediate_size": 160, "num_hidden_layers": 4,
  "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "vocab_size": 256,
  "tie_word_embeddings": false, "rope_theta": 10000.0, "rms_norm_eps": 1e-6,
  "max_position_embeddings": 4096
})";

TEST(HfImportTest, TheFixtureImportsAsTiny) {
  StatusOr<ModelConfig> model = import_hf_config(kQwenJson, "dir/tiny.json");
  ASSERT_TRUE(model.ok()) << model.status().message();
  StatusOr<ModelConfig> tiny = load_model("tiny");
  ASSERT_TRUE(tiny.ok());
  expect_same_architecture(*model, *tiny);
}

TEST(HfImportTest, BadConfigsNameTheFileAndKey) {
  const std::string f = "dir/config.json";
  expect_invalid(
      import_hf_config(replace(kQwenJson, "Qwen2ForCausalLM", "MixtralForCausalLM"), f).status(),
      {f, "architectures", "MixtralForCausalLM", "LlamaForCausalLM"});
  expect_invalid(import_hf_config(replace(kQwenJson, R"("hidden_size": 64,)", ""), f).status(),
                 {f, "hidden_size", "missing"});
  expect_invalid(
      import_hf_config(replace(kQwenJson, R"("vocab_size": 256)", R"("vocab_size": "256")"), f)
          .status(),
      {f, "vocab_size", "integer"});
  expect_invalid(
      import_hf_config(
          replace(kQwenJson, R"("num_key_value_heads": 2)", R"("num_key_value_heads": 3)"), f)
          .status(),
      {f, "num_key_value_heads", "multiple"});
  expect_invalid(import_hf_config(replace(kQwenJson, R"("rope_theta": 10000.0)",
                                          R"("rope_theta": 10000.0, "hidden_act": "gelu")"),
                                  f)
                     .status(),
                 {f, "hidden_act", "gelu"});
  expect_invalid(import_hf_config(replace(kQwenJson, R"("rope_theta": 10000.0)",
                                          R"("rope_theta": 10000.0, "use_sliding_window": true)"),
                                  f)
                     .status(),
                 {f, "use_sliding_window"});
  expect_invalid(
      import_hf_config(replace(kQwenJson, R"("num_hidden_layers": 4)", R"("num_hidden_layers": 0)"),
                       f)
          .status(),
      {f, "num_hidden_layers", "positive"});
  // Not JSON at all: nlohmann's message carries the line and column.
  expect_invalid(import_hf_config("{\n  \"hidden_size\": ,\n}", f).status(), {f, "line 2"});
  expect_invalid(import_hf_config("[1, 2]", f).status(), {f, "object"});
  expect_invalid(load_model("tests/models/data/no-such-file.json").status(), {"no-such-file.json"});
}

// Hostile config.json files: 200,000 nested '[' overflowed the stack (SIGSEGV) in the message
// that printed the value, and 1e999 escaped as nlohmann's out_of_range (exit 134). Both are
// InvalidInput naming the file, the byte or the key.
TEST(HfImportTest, HostileConfigsAreBadInput) {
  const std::string f = "dir/config.json";
  const std::string deep = std::string(200000, '[') + std::string(200000, ']');
  expect_invalid(import_hf_config(deep, f).status(),
                 {"dir/config.json: JSON nested deeper than 64 at byte 65"});
  expect_invalid(
      import_hf_config(replace(kQwenJson, R"("hidden_size": 64,)", R"("hidden_size": 1e999,)"), f)
          .status(),
      {"dir/config.json: hidden_size: number out of range: 1e999"});
  expect_invalid(
      import_hf_config(
          replace(kQwenJson, R"("hidden_size": 64,)", R"("hidden_size": 18446744073709551615,)"), f)
          .status(),
      {"dir/config.json: hidden_size: expected an integer, got 18446744073709551615"});
  expect_invalid(load_model("tests/models/data").status(),
                 {"tests/models/data: not a regular file (a directory)"});
}

const char* kTinyYaml = R"(name: small
architecture: llama
hidden: 64
ffn_hidden: 160
layers: 2
heads: 4
kv_heads: 2
vocab: 256
qkv_bias: false
tied_embeddings: false
rope_theta: 10000.0
rms_norm_eps: 1.0e-6
max_position: 1024
)";

TEST(ModelYamlTest, TheBaseTextIsValid) {
  StatusOr<ModelConfig> model = parse_model_yaml(kTinyYaml, "m.yaml");
  ASSERT_TRUE(model.ok()) << model.status().message();
  EXPECT_EQ(model->head_dim, 16);  // hidden / heads
  EXPECT_EQ(model->name, "small");
}

TEST(ModelYamlTest, BadInputsNameFileLineAndKey) {
  const std::string f = "m.yaml";
  // Unknown key, on disk: reported at its own line (5) and column.
  expect_invalid(load_model("tests/models/data/bad_unknown_key.yaml").status(),
                 {"tests/models/data/bad_unknown_key.yaml:5:1", "hiden", "unknown key"});
  // Wrong type: the value's line (layers is line 5).
  expect_invalid(parse_model_yaml(replace(kTinyYaml, "layers: 2", "layers: two"), f).status(),
                 {"m.yaml:5:", "layers", "integer"});
  expect_invalid(
      parse_model_yaml(replace(kTinyYaml, "qkv_bias: false", "qkv_bias: maybe"), f).status(),
      {"m.yaml:9:", "qkv_bias", "true or false"});
  // heads not divisible by kv_heads: reported at kv_heads (line 7).
  expect_invalid(parse_model_yaml(replace(kTinyYaml, "kv_heads: 2", "kv_heads: 3"), f).status(),
                 {"m.yaml:7:", "kv_heads", "multiple"});
  // Unknown architecture (line 2).
  expect_invalid(
      parse_model_yaml(replace(kTinyYaml, "architecture: llama", "architecture: gpt2"), f).status(),
      {"m.yaml:2:", "architecture", "gpt2", "llama | qwen2 | gpt"});
  // A bad attention implementation, and a dropout probability out of range.
  expect_invalid(parse_model_yaml(std::string(kTinyYaml) + "attention: sdpa\n", f).status(),
                 {"m.yaml:", "attention", "flash | unfused"});
  expect_invalid(parse_model_yaml(std::string(kTinyYaml) + "dropout: 1.5\n", f).status(),
                 {"m.yaml:", "dropout"});
  // GPT needs neither rope_theta nor rms_norm_eps, and has a bias on every linear layer.
  {
    std::string gpt = replace(kTinyYaml, "architecture: llama", "architecture: gpt");
    gpt = replace(gpt, "qkv_bias: false\n", "");
    gpt = replace(gpt, "tied_embeddings: false\n", "");
    for (const char* key : {"rope_theta", "rms_norm_eps"}) {
      const size_t at = gpt.find(key);
      ASSERT_NE(at, std::string::npos);
      gpt.erase(at, gpt.find('\n', at) - at + 1);
    }
    StatusOr<ModelConfig> model = parse_model_yaml(gpt, f);
    ASSERT_TRUE(model.ok()) << model.status().message();
    EXPECT_TRUE(model->gpt());
    EXPECT_TRUE(model->qkv_bias);
    EXPECT_TRUE(model->tied_embeddings);
    expect_invalid(parse_model_yaml(gpt + "qkv_bias: false\n", f).status(), {"qkv_bias", "gpt"});
    // Without RoPE the Llama-family rules stay: a llama model still needs rope_theta.
    expect_invalid(
        parse_model_yaml(replace(gpt, "architecture: gpt", "architecture: llama"), f).status(),
        {"m.yaml:1:", "missing"});
  }
  // Missing field: the map (line 1) and the key.
  expect_invalid(parse_model_yaml(replace(kTinyYaml, "vocab: 256\n", ""), f).status(),
                 {"m.yaml:1:", "vocab", "missing"});
  // Non-positive size.
  expect_invalid(parse_model_yaml(replace(kTinyYaml, "hidden: 64", "hidden: -64"), f).status(),
                 {"m.yaml:3:", "hidden", "positive"});
  // hidden not a multiple of heads, with no explicit head_dim.
  expect_invalid(parse_model_yaml(replace(kTinyYaml, "heads: 4\n", "heads: 6\n"), f).status(),
                 {"m.yaml:6:", "heads", "head_dim"});
  // A fractional count.
  expect_invalid(
      parse_model_yaml(replace(kTinyYaml, "ffn_hidden: 160", "ffn_hidden: 160.5"), f).status(),
      {"m.yaml:4:", "ffn_hidden", "integer"});
  // Architecture and bias disagree: Qwen2 always has QKV bias.
  expect_invalid(
      parse_model_yaml(replace(kTinyYaml, "architecture: llama", "architecture: qwen2"), f)
          .status(),
      {"m.yaml:9:", "qkv_bias", "qwen2"});
  // Odd head_dim cannot carry rotary embeddings.
  expect_invalid(
      parse_model_yaml(replace(kTinyYaml, "vocab: 256", "vocab: 256\nhead_dim: 15"), f).status(),
      {"m.yaml:9:", "head_dim", "even"});
  expect_invalid(parse_model_yaml("name: [1, 2\n", f).status(), {"m.yaml", "YAML"});
}

TEST(ModelYamlTest, ValidateModelNamesOriginAndKey) {
  StatusOr<ModelConfig> model = parse_model_yaml(kTinyYaml, "m.yaml");
  ASSERT_TRUE(model.ok());
  ModelConfig broken = *model;
  broken.kv_heads = 3;
  expect_invalid(validate_model(broken, "job.yaml"), {"job.yaml", "kv_heads"});
  broken = *model;
  broken.vocab = 0;
  expect_invalid(validate_model(broken, "job.yaml"), {"job.yaml", "vocab", "positive"});
  broken = *model;
  broken.architecture = "mamba";
  expect_invalid(validate_model(broken, "job.yaml"), {"job.yaml", "architecture", "mamba"});
  EXPECT_TRUE(validate_model(*model, "job.yaml").ok());
}

}  // namespace
}  // namespace cf
