/* A hostile image's NSS module, for LauncherSecurity.JobUserIsResolvedOnTheHostNeverThroughTheImagesNss:
 * whatever process loads it writes "ran" to the file named in MODULE.mark beside it (the test
 * names one in the sandbox, whose path is the same inside the job and outside). The launcher
 * must never load it: it resolves the job user on the host, never through the image's NSS.
 * Built by CMake, so that the test needs no compiler where it runs. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

__attribute__((constructor)) static void evil(void) {
  Dl_info self;
  if (!dladdr((void*)evil, &self) || !self.dli_fname) return;
  char mark_file[4096], mark[4096];
  snprintf(mark_file, sizeof mark_file, "%s.mark", self.dli_fname);
  FILE* in = fopen(mark_file, "r");
  if (!in) return;
  const int got = fgets(mark, sizeof mark, in) != NULL;
  fclose(in);
  if (!got) return;
  mark[strcspn(mark, "\n")] = 0;
  FILE* out = fopen(mark, "w");
  if (out) {
    fputs("ran", out);
    fclose(out);
  }
}

int _nss_evil_getpwnam_r(void) { return 0; }
