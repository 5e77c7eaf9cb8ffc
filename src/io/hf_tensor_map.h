// Stored Hugging Face tensors ↔ the IR's canonical tensors, through a family's name table (private to io/).
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "family.h"
#include "slmopt/ir/model.h"

namespace slmopt {

// The canonical tensors (with their row counts) a stored tensor holds, in row order: one for a renamed tensor,
// several for a fused one; empty when the family's table has no such name or the config does not use a part.
std::vector<std::pair<std::string, int64_t>> hf_canonical_parts(const FamilyDefinition& family, const Config& config,
                                                                const std::string& stored_name);

// How a model is stored: each Hugging Face tensor with the canonical tensors it holds (row order), in the
// model's order; a tied head is left out. Error(Unsupported) naming `target` and the tensor for one the family has
// no name for, one the description does not imply, or a fused tensor with a part missing.
struct HfStoredTensor {
  std::string hf;
  std::vector<std::string> parts;
  bool transposed = false;  // stored [in, out] (GPT-2's Conv1D) when written as a float matrix
};
std::vector<HfStoredTensor> hf_storage_plan(const FamilyDefinition& family, const Model& model, const std::string& target);

// Renames every stored tensor to its canonical name (views sharing the bytes) and splits fused tensors into row
// views; drops the family's buffers, resolves safetensors __metadata__ aliases ("<dropped>": "<kept>"), folds a
// stored head into the embedding when tied. Error(BadInput) naming `source` and the tensors for names the table
// lacks, tensors the config does not use, and fused tensors whose rows do not add up to the config's parts.
// Matrices of transposed rows (GPT-2's Conv1D) are transposed to [out, in], except those named in
// `stored_out_in`, which already are (GPTQ codes unpacked, an ONNX graph's MatMul weights turned around).
std::map<std::string, Tensor> hf_tensors_to_canonical(const FamilyDefinition& family, const Config& config,
                                                      std::vector<Tensor> stored,
                                                      const std::map<std::string, std::string>& aliases,
                                                      const std::string& source,
                                                      const std::set<std::string>& stored_out_in = {});

// A matrix stored [in, out] (GPT-2's Conv1D) as [out, in], or back, named `name`; the elements move, not convert,
// so F32, F16 and BF16 stay exact. Error(BadInput) naming the tensor for anything but a float matrix.
Tensor hf_transposed_matrix(const Tensor& t, const std::string& name);

// The model's tensors under the family's names, in the model's order; fused tensors are built by stacking their
// parts' rows (bytes when the parts share a type, else F32). A tied head is not written. Error(Unsupported)
// naming `target` and the tensor for one the family has no name for.
std::vector<Tensor> hf_tensors_from_canonical(const FamilyDefinition& family, const Model& model, const std::string& target);

}  // namespace slmopt
