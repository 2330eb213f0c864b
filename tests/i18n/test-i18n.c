/* test-i18n.c: arip's messages reach the user in the user's language
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Run by meson with LANGUAGE=de, LC_ALL=C.UTF-8 and ARIP_LOCALEDIR pointing
 * at the catalogs built in <builddir>/po, so no installed catalog and no
 * generated German locale are needed: glibc honours LANGUAGE in any locale
 * but "C"/"POSIX", and C.UTF-8 is built into glibc since 2.35.
 */
#include <locale.h>
#include <stdlib.h>
#include <string.h>

#include <arip.h>

/* Runs in the worker: ends it without an answer. */
static void
fn_exit_three (AripCall *call, GVariant *args, gpointer user_data)
{
  exit (3);
}

/* Skips the test, saying why, when the environment cannot show German
 * messages (the program was run by hand, not by meson test). */
static gboolean
german_environment_or_skip (void)
{
  const char *language = g_getenv ("LANGUAGE");

  if (g_getenv ("ARIP_LOCALEDIR") == NULL)
    {
      g_test_skip ("ARIP_LOCALEDIR is not set: run this test with meson test");
      return FALSE;
    }
  if (language == NULL || !g_str_has_prefix (language, "de"))
    {
      g_test_skip ("LANGUAGE is not German: run this test with meson test");
      return FALSE;
    }
  if (g_strcmp0 (setlocale (LC_MESSAGES, NULL), "C") == 0 ||
      g_strcmp0 (setlocale (LC_MESSAGES, NULL), "POSIX") == 0)
    {
      /* gettext ignores LANGUAGE in the C locale. */
      g_test_skip ("The locale is C, where gettext ignores LANGUAGE (no C.UTF-8 locale?)");
      return FALSE;
    }
  return TRUE;
}

/* A child that exits with status 3 fails the call with ARIP_ERROR_EXITED,
 * and the message says so in German. */
static void
test_exited_message_is_german (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;

  if (!german_environment_or_skip ())
    return;

  result = arip_run_in_process_sync ("exit-three", NULL, NULL, &error);

  g_assert_null (result);
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_EXITED);
  g_test_message ("message: %s", error->message);

  /* "Kindprozess PID hat sich mit Status 3 beendet, während er „exit-three“
   * ausführte" */
  g_assert_true (g_str_has_prefix (error->message, "Kindprozess "));
  g_assert_true (g_str_has_suffix (error->message,
                                   " hat sich mit Status 3 beendet, während er „exit-three“ ausführte"));
  g_assert_true (g_utf8_validate (error->message, -1, NULL));
  g_assert_null (strstr (error->message, "exited with status"));
}

/* The same program, in a language arip has no catalog for, falls back to
 * English: the German above came from the catalog, not from the source. */
static void
test_unknown_language_is_english (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;
  g_autofree char *saved = g_strdup (g_getenv ("LANGUAGE"));

  if (!german_environment_or_skip ())
    return;

  /* gettext caches translations per locale, not per LANGUAGE; setting the
   * locale again drops that cache. */
  g_setenv ("LANGUAGE", "xx", TRUE);
  setlocale (LC_ALL, "");
  result = arip_run_in_process_sync ("exit-three", NULL, NULL, &error);
  g_setenv ("LANGUAGE", saved, TRUE);
  setlocale (LC_ALL, "");

  g_assert_null (result);
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_EXITED);
  g_test_message ("message: %s", error->message);
  g_assert_true (g_str_has_prefix (error->message, "Child process "));
  g_assert_true (g_str_has_suffix (error->message,
                                   " exited with status 3 while running “exit-three”"));
}

int
main (int argc, char **argv)
{
  arip_register_function ("exit-three", fn_exit_three, NULL, NULL);
  arip_init (&argc, &argv);   /* in a worker: serves the call and exits */

  /* As any translated program does: take the locale from the environment. */
  setlocale (LC_ALL, "");

  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/Arip/I18n/exited-message-is-german", test_exited_message_is_german);
  g_test_add_func ("/Arip/I18n/unknown-language-is-english", test_unknown_language_is_english);

  return g_test_run ();
}
