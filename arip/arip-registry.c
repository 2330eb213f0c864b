/* arip-registry.c: the functions a program offers to run in a worker
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "arip-init.h"
#include "arip-registry-private.h"

typedef struct {
  AripFunc       func;
  gpointer       user_data;
  GDestroyNotify notify;
} Entry;

static GMutex registry_lock;
static GHashTable *registry;   /* char* -> Entry* */

static void
entry_free (gpointer data)
{
  Entry *entry = data;

  if (entry->notify != NULL)
    entry->notify (entry->user_data);
  g_free (entry);
}

/**
 * arip_register_function:
 * @name: the name the parent uses to ask for the function
 * @func: (scope notified) (closure user_data) (destroy notify): the function
 * @user_data: data passed to @func
 * @notify: (nullable): frees @user_data when the registration is replaced
 *
 * Offers @func to run in worker processes under @name.
 *
 * Register every function before calling arip_init(): a worker is the same
 * program started again, and it can only serve names that were registered
 * by the time its arip_init() runs. Only registered names ever run; the
 * channel between the processes never carries code or addresses.
 *
 * Registering a name again replaces the earlier function.
 */
void
arip_register_function (const char     *name,
                        AripFunc        func,
                        gpointer        user_data,
                        GDestroyNotify  notify)
{
  Entry *entry;

  g_return_if_fail (name != NULL && *name != '\0');
  g_return_if_fail (g_utf8_validate (name, -1, NULL));
  g_return_if_fail (func != NULL);

  entry = g_new0 (Entry, 1);
  entry->func = func;
  entry->user_data = user_data;
  entry->notify = notify;

  g_mutex_lock (&registry_lock);
  if (registry == NULL)
    registry = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, entry_free);
  g_hash_table_replace (registry, g_strdup (name), entry);
  g_mutex_unlock (&registry_lock);
}

gboolean
arip_registry_lookup (const char *name,
                      AripFunc   *func,
                      gpointer   *user_data)
{
  Entry *entry = NULL;

  g_mutex_lock (&registry_lock);
  if (registry != NULL)
    entry = g_hash_table_lookup (registry, name);
  if (entry != NULL)
    {
      *func = entry->func;
      *user_data = entry->user_data;
    }
  g_mutex_unlock (&registry_lock);

  return entry != NULL;
}
