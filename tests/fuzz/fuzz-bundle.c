/* fuzz-bundle.c — libFuzzer target for the strict bundle reader and verifier:
 * the input is written to a memfd and given to bundle_verify(). Trust roots
 * come from $TESTIGO_FUZZ_ROOT (tests/fuzz/corpus-root.pem, the root that
 * sealed the seed corpus, so that fuzzed inputs reach the signature, chain and
 * content checks); without it a throw-away PKI is made once. Any crash, hang,
 * sanitizer report or GLib critical is a bug; a verdict of any kind is not.
 */
#define _GNU_SOURCE
#include "bundle.h"
#include "tg-common.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static char *root_pem;

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  const char *env = g_getenv ("TESTIGO_FUZZ_ROOT");

  if (env != NULL)
    root_pem = g_strdup (env);
  else
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *dir = g_dir_make_tmp ("testigo-fuzz-XXXXXX", &error);
      g_autofree char *keys = NULL;
      BundleKeysOptions opts = { .key_bits = 2048 };
      g_assert_no_error (error);
      keys = g_build_filename (dir, "keys", NULL);
      if (!bundle_keys_init (keys, &opts, &error))
        g_error ("keys init: %s", error->message);
      root_pem = g_build_filename (keys, "root.pem", NULL);
    }
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  int fd = memfd_create ("bundle", MFD_CLOEXEC);
  g_autofree char *path = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (BundleReport) report = NULL;
  BundleVerifyOptions opts = { 0 };

  if (root_pem == NULL)
    LLVMFuzzerInitialize (NULL, NULL);
  g_assert (fd >= 0);
  g_assert (tg_write_all (fd, data, size, "memfd", NULL));
  path = g_strdup_printf ("/proc/self/fd/%d", fd);
  opts.ca_file = root_pem;
  opts.quiet_progress = TRUE;
  report = bundle_verify (path, &opts, &error);
  g_assert (report != NULL);
  /* A verdict must be coherent: a finding always names its sub-indication. */
  g_assert ((report->indication == BUNDLE_TOTAL_PASSED) == (report->sub_indication == NULL));
  g_assert (report->indication == BUNDLE_TOTAL_PASSED || report->message != NULL);
  close (fd);
  return 0;
}
