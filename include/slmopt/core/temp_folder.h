// A hidden folder beside an output where the output (an HF checkpoint, an ONNX export folder, a distillation kit)
// is assembled before it is moved into place, so that the output appears whole or not at all.
//
// Created under a fresh unpredictable name (mkdtemp: never an existing name, never through a planted symlink —
// the parent may be writable by others) with the permissions an ordinary mkdir would give (0777 less the umask,
// not mkdtemp's 0700), and registered with core/interrupt.h in the same step, so Ctrl-C at any moment removes it.
// Removed with its contents on scope exit (an error, an exception) unless released.
#pragma once

#include <filesystem>
#include <string>

namespace slmopt {

class TempFolder {
 public:
  // Creates `parent/prefix` + six unpredictable characters; Error(Io) naming the parent.
  TempFolder(const std::string& parent, const std::string& prefix);
  ~TempFolder();
  TempFolder(const TempFolder&) = delete;
  TempFolder& operator=(const TempFolder&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // The folder was renamed into place: no longer this object's to remove.
  void release();

 private:
  std::filesystem::path path_;
  bool released_ = false;
};

// Renames a staged file or folder (or a whole TempFolder) to its final path, under hold_off_interrupt_cleanup():
// an interrupt's cleanup walking the staging folder must not see it move away half-removed. Error(Io) naming both.
void move_into_place(const std::filesystem::path& from, const std::filesystem::path& to);

}  // namespace slmopt
