/* arip-error.c: the ARIP_ERROR domain and the library's text domain
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n-lib.h>

#include "arip-error.h"
#include "arip-error-private.h"

/**
 * arip_error_quark:
 *
 * Gets the quark of the arip error domain, %ARIP_ERROR. Errors in it have
 * codes from [error@Arip.Error].
 *
 * Returns: the error domain's quark
 */
G_DEFINE_QUARK (arip-error-quark, arip_error)

/* ARIP_LOCALEDIR, when set, replaces the installed locale directory: it lets
 * the tests (and anyone running an uninstalled build) use the catalogs
 * built in <builddir>/po. */
void
_arip_i18n_init (void)
{
  static gsize done = 0;

  if (g_once_init_enter (&done))
    {
      const char *localedir = g_getenv ("ARIP_LOCALEDIR");

      if (localedir == NULL || *localedir == '\0')
        localedir = LOCALEDIR;
      bindtextdomain (GETTEXT_PACKAGE, localedir);
      bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
      g_once_init_leave (&done, 1);
    }
}
