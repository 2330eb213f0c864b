/* fuzz-normal-form.c: arip's normal-form check against GLib's, fuzzed
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * An input is a type (its length in the first byte, then the type string)
 * and the bytes of a value of it. arip_normal_form_check_full() must never
 * say normal where g_variant_is_normal_form() says no (a hostile child's
 * value would be trusted), nor refuse what GLib calls normal (a good value
 * would be lost; GLib's reading of a fixed-size value of the wrong size as
 * zeros aside); the quick check must agree or leave it (-1). A
 * disagreement aborts.
 */
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "arip-normal-form-private.h"
#include "fuzz-frame-decoder.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autofree char *type = NULL;
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(GBytes) empty = NULL;
  g_autoptr(GVariant) value = NULL;
  g_autoptr(GVariant) probe = NULL;
  const guint8 *body;
  gsize type_len, body_size;
  gboolean theirs;
  int ours, quick;

  if (size < 1)
    return 0;
  type_len = data[0];
  if (type_len == 0 || type_len > 64 || size < 1 + type_len)
    return 0;
  type = g_strndup ((const char *) data + 1, type_len);
  if (strlen (type) != type_len || !g_variant_type_string_is_valid (type) ||
      !g_variant_type_is_definite (G_VARIANT_TYPE (type)))
    return 0;
  body = data + 1 + type_len;
  body_size = size - 1 - type_len;

  /* A copy of its own, so that a read past the end is seen by ASan. */
  bytes = g_bytes_new (body, body_size);
  ours = arip_normal_form_check_full (type, g_bytes_get_data (bytes, NULL), body_size);
  quick = arip_normal_form_check (type, g_bytes_get_data (bytes, NULL), body_size);
  value = g_variant_ref_sink (g_variant_new_from_bytes (G_VARIANT_TYPE (type), bytes, FALSE));
  theirs = g_variant_is_normal_form (value);
  empty = g_bytes_new (NULL, 0);
  probe = g_variant_ref_sink (g_variant_new_from_bytes (G_VARIANT_TYPE (type), empty, FALSE));

  if (ours == 1 && !theirs)
    {
      g_printerr ("fuzz-normal-form: %s: arip says normal, GLib not\n", type);
      abort ();
    }
  if (ours == 0 && theirs && !(g_variant_get_size (probe) > 0 &&
                               g_variant_get_size (probe) != body_size))
    {
      g_printerr ("fuzz-normal-form: %s: GLib says normal, arip not\n", type);
      abort ();
    }
  if (quick != -1 && quick != ours)
    {
      g_printerr ("fuzz-normal-form: %s: the quick check says %d, the full one %d\n",
                  type, quick, ours);
      abort ();
    }
  return 0;
}
