/* arip-error.c: the ARIP_ERROR domain and the library's text domain
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n-lib.h>

#include "arip-error.h"
#include "arip-error-private.h"

G_DEFINE_QUARK (arip-error-quark, arip_error)

void
_arip_i18n_init (void)
{
  static gsize done = 0;

  if (g_once_init_enter (&done))
    {
      bindtextdomain (GETTEXT_PACKAGE, LOCALEDIR);
      bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
      g_once_init_leave (&done, 1);
    }
}
