// Reports say what happened in a form people read (issue 12, defect 14): sizes compare like with like and count
// ONNX external data; the Markdown carries the command line, notes and summary tables, and details stay one
// line each instead of a JSON dump.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "slmopt/eval/report.h"
#include "slmopt/pipeline/stage_report.h"
#include "test_support.h"

namespace slmopt {
namespace {

namespace fs = std::filesystem;

void write_bytes(const fs::path& p, size_t n) {
  std::ofstream(p, std::ios::binary) << std::string(n, 'x');
}

TEST(ReportFormat, OnnxSizesCountTheExternalDataFile) {
  const fs::path dir = fs::temp_directory_path() / ("slmopt_report_format_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  write_bytes(dir / "m.onnx", 100);
  EXPECT_EQ(pipeline::path_bytes((dir / "m.onnx").string()), 100u);
  write_bytes(dir / "m.onnx.data", 5000);
  EXPECT_EQ(pipeline::path_bytes((dir / "m.onnx").string()), 5100u);
  write_bytes(dir / "other.bin", 7);  // a folder counts everything in it
  EXPECT_EQ(pipeline::path_bytes(dir.string()), 5107u);
  fs::remove_all(dir);
}

TEST(ReportFormat, SizeChangeSaysLargerWhenTheOutputGrew) {
  EXPECT_EQ(size_change_text(1000, 250), "4.00x smaller");
  EXPECT_EQ(size_change_text(1000, 1840), "1.84x larger");
  EXPECT_EQ(size_change_text(1000, 1001), "the same size");
  EXPECT_EQ(size_change_text(0, 10), "size unknown");
}

TEST(ReportFormat, MarkdownHasCommandLineNotesTablesAndOneLineDetails) {
  AccuracyReport r;
  r.command = "prune";
  r.command_line = "slmopt prune in --heads-ratio 0.5 -o out";
  r.input_bytes = 1000;
  r.output_bytes = 1840;
  r.parameters = 100;
  r.output_parameters = 92;
  r.input_bits_per_weight = 16;
  r.bits_per_weight = 32;
  r.notes.push_back("the ONNX export stores F32 weights");
  r.tables.push_back({"What each layer kept", {"layer", "heads"}, {{"0", "2 / 4"}, {"1", "4 / 4"}}});
  r.extra["plan"] = {{"layers", nlohmann::json::array({{{"ffn", "576 of 768: 0-575"}}})}};
  const std::string md = report_to_markdown(r);
  EXPECT_NE(md.find("```\nslmopt prune in --heads-ratio 0.5 -o out\n```"), std::string::npos) << md;
  EXPECT_NE(md.find("- the ONNX export stores F32 weights\n"), std::string::npos) << md;
  EXPECT_NE(md.find("| size on disk | 1.840 of the input (1.84x larger) |"), std::string::npos) << md;
  EXPECT_NE(md.find("| parameters | 100 → 92 (0.920) |"), std::string::npos) << md;
  EXPECT_NE(md.find("| bits per weight | 16.000 → 32.000 |"), std::string::npos) << md;
  EXPECT_NE(md.find("## What each layer kept\n\n| layer | heads |\n|---|---|\n| 0 | 2 / 4 |\n| 1 | 4 / 4 |\n"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("- `plan`: `{\"layers\":[{\"ffn\":\"576 of 768: 0-575\"}]}`\n"), std::string::npos) << md;
  const nlohmann::json j = report_to_json(r);
  EXPECT_EQ(j.at("command_line"), r.command_line);
  EXPECT_EQ(j.at("notes").size(), 1u);
  EXPECT_EQ(j.at("output_parameters"), 92);
}

}  // namespace
}  // namespace slmopt
