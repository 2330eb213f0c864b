/* arip-shared-dict.c: a dictionary shared between processes
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n-lib.h>

#include "arip-error.h"
#include "arip-shared-dict.h"
#include "arip-shared-private.h"

/**
 * AripSharedDict:
 *
 * A dictionary from strings to #GVariant values that every process
 * holding it reads and writes (aioprocessing's `AioManager().dict()`).
 * The process that made it holds the data, and its calls are immediate;
 * a child's go to it and back (the blocking forms wait for that, the
 * `_async` forms do not).
 *
 * arip_shared_dict_replace() is an atomic compare-and-set. Every change
 * is announced by #AripSharedDict::changed in every process that holds
 * the dictionary, in the main context it was made or opened in.
 */

struct _AripSharedDict {
  AripShared parent_instance;
};

enum {
  SIGNAL_CHANGED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE (AripSharedDict, arip_shared_dict, ARIP_TYPE_SHARED)

typedef struct {
  AripSharedState parent;
  GHashTable     *table;    /* char * → GVariant * */
} DictState;

static void
changed (DictState  *dict,
         const char *key)
{
  arip_shared_state_emit (&dict->parent, "changed", g_variant_new ("(s)", key));
}

static void
dict_run (AripSharedState *state,
          AripWaiter      *waiter)
{
  DictState *dict = (DictState *) state;

  switch (waiter->op)
    {
    case ARIP_DICT_OP_SET:
      {
        const char *key;
        GVariant *value;

        if (!arip_waiter_check_arg (waiter, "(sv)"))
          return;
        g_variant_get (waiter->arg, "(&sv)", &key, &value);
        g_hash_table_insert (dict->table, g_strdup (key), value);
        changed (dict, key);
        arip_waiter_return (waiter, NULL, g_variant_new ("()"), NULL);
        return;
      }

    case ARIP_DICT_OP_LOOKUP:
      {
        const char *key;
        GVariant *value;

        if (!arip_waiter_check_arg (waiter, "(s)"))
          return;
        g_variant_get (waiter->arg, "(&s)", &key);
        value = g_hash_table_lookup (dict->table, key);
        arip_waiter_return (waiter, NULL,
                            value != NULL ? g_variant_new ("(m@v)", g_variant_new_variant (value))
                                          : g_variant_new ("(mv)", NULL),
                            NULL);
        return;
      }

    case ARIP_DICT_OP_REMOVE:
      {
        const char *key;
        gboolean removed;

        if (!arip_waiter_check_arg (waiter, "(s)"))
          return;
        g_variant_get (waiter->arg, "(&s)", &key);
        removed = g_hash_table_remove (dict->table, key);
        if (removed)
          changed (dict, key);
        arip_waiter_return (waiter, NULL, g_variant_new ("(b)", removed), NULL);
        return;
      }

    case ARIP_DICT_OP_KEYS:
      {
        g_autofree const char **keys = (const char **) g_hash_table_get_keys_as_array (dict->table, NULL);

        arip_waiter_return (waiter, NULL, g_variant_new ("(^as)", keys), NULL);
        return;
      }

    case ARIP_DICT_OP_REPLACE:
      {
        g_autoptr(GVariant) expected = NULL;
        const char *key;
        GVariant *value, *current;
        gboolean replaced;

        if (!arip_waiter_check_arg (waiter, "(smvv)"))
          return;
        g_variant_get (waiter->arg, "(&smvv)", &key, &expected, &value);
        current = g_hash_table_lookup (dict->table, key);
        replaced = expected == NULL ? current == NULL
                                    : current != NULL && g_variant_equal (current, expected);
        if (replaced)
          {
            g_hash_table_insert (dict->table, g_strdup (key), value);
            changed (dict, key);
          }
        else
          g_variant_unref (value);
        arip_waiter_return (waiter, NULL, g_variant_new ("(b)", replaced), NULL);
        return;
      }

    default:
      arip_waiter_return_error (waiter, NULL, ARIP_ERROR, ARIP_ERROR_INVALID_DATA,
                                _("A shared dictionary has no operation %u"), waiter->op);
    }
}

static GVariant *
dict_describe (AripSharedState *state,
               GUnixFDList     *fds)
{
  return g_variant_new ("()");
}

static void
dict_finalize (AripSharedState *state)
{
  g_hash_table_unref (((DictState *) state)->table);
}

static void
dict_event (AripShared *object,
            const char *what,
            GVariant   *value)
{
  const char *key;

  if (!g_str_equal (what, "changed") || !g_variant_is_of_type (value, G_VARIANT_TYPE ("(s)")))
    return;
  g_variant_get (value, "(&s)", &key);
  g_signal_emit (object, signals[SIGNAL_CHANGED], g_quark_try_string (key), key);
}

static gboolean
dict_opened (AripShared   *object,
             GVariant     *info,
             GUnixFDList  *fds,
             GError      **error)
{
  return TRUE;
}

const AripSharedStateClass arip_shared_dict_state_class = {
  .get_type = arip_shared_dict_get_type,
  .run = dict_run,
  .withdraw = arip_waiter_withdraw_default,
  .describe = dict_describe,
  .finalize = dict_finalize,
  .event = dict_event,
  .opened = dict_opened,
};

static void
arip_shared_dict_class_init (AripSharedDictClass *klass)
{
  /**
   * AripSharedDict::changed:
   * @self: the dictionary
   * @key: the key whose value was set, replaced or removed
   *
   * A process changed the dictionary. Emitted in every process that holds
   * it, in the main context it was made or opened in; detailed by the
   * key (when a quark of it exists).
   */
  signals[SIGNAL_CHANGED] =
    g_signal_new ("changed", G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST | G_SIGNAL_DETAILED, 0, NULL, NULL, NULL,
                  G_TYPE_NONE, 1, G_TYPE_STRING);
}

static void
arip_shared_dict_init (AripSharedDict *self)
{
}

/**
 * arip_shared_dict_new:
 *
 * A new, empty dictionary.
 *
 * Returns: (transfer full): the dictionary
 */
AripSharedDict *
arip_shared_dict_new (void)
{
  AripSharedDict *self = g_object_new (ARIP_TYPE_SHARED_DICT, NULL);
  DictState *state = arip_shared_state_new (&arip_shared_dict_state_class, sizeof (DictState),
                                            ARIP_SHARED (self));

  state->table = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                        (GDestroyNotify) g_variant_unref);
  arip_shared_set_state (ARIP_SHARED (self), &state->parent);
  return self;
}

static GVariant *
replace_arg (const char *key,
             GVariant   *expected,
             GVariant   *value)
{
  return g_variant_new ("(sm@vv)", key,
                        expected != NULL ? g_variant_new_variant (expected) : NULL, value);
}

static GVariant *
sync_op (AripSharedDict  *self,
         guint            op,
         GVariant        *arg,
         GError         **error)
{
  return arip_shared_request_sync (ARIP_SHARED (self), op, arg, NULL, -1, NULL, NULL, error);
}

/**
 * arip_shared_dict_set:
 * @self: a dictionary
 * @key: the key
 * @value: its value; a floating reference is sunk
 * @error: return location for a #GError
 *
 * Sets @key to @value.
 *
 * Returns: %TRUE; %FALSE with @error only in a child whose parent is gone
 */
gboolean
arip_shared_dict_set (AripSharedDict  *self,
                      const char      *key,
                      GVariant        *value,
                      GError         **error)
{
  g_autoptr(GVariant) reply = NULL;

  g_return_val_if_fail (ARIP_IS_SHARED_DICT (self), FALSE);
  g_return_val_if_fail (key != NULL && value != NULL, FALSE);

  reply = sync_op (self, ARIP_DICT_OP_SET, g_variant_new ("(sv)", key, value), error);
  return reply != NULL;
}

/**
 * arip_shared_dict_lookup:
 * @self: a dictionary
 * @key: the key
 * @error: return location for a #GError
 *
 * Reads the value @key has now, in whichever process set it.
 *
 * Returns: (transfer full) (nullable): the value of @key, or %NULL (with
 *   @error unset) if it has none
 */
GVariant *
arip_shared_dict_lookup (AripSharedDict  *self,
                         const char      *key,
                         GError         **error)
{
  g_autoptr(GVariant) reply = NULL;
  GVariant *value = NULL;

  g_return_val_if_fail (ARIP_IS_SHARED_DICT (self), NULL);
  g_return_val_if_fail (key != NULL, NULL);

  reply = sync_op (self, ARIP_DICT_OP_LOOKUP, g_variant_new ("(s)", key), error);
  if (reply != NULL)
    g_variant_get (reply, "(mv)", &value);
  return value;
}

/**
 * arip_shared_dict_remove:
 * @self: a dictionary
 * @key: the key
 * @error: return location for a #GError
 *
 * Takes @key and its value out of the dictionary, emitting
 * [signal@Arip.SharedDict::changed] if it had one.
 *
 * Returns: %TRUE if @key had a value
 */
gboolean
arip_shared_dict_remove (AripSharedDict  *self,
                         const char      *key,
                         GError         **error)
{
  g_autoptr(GVariant) reply = NULL;
  gboolean removed = FALSE;

  g_return_val_if_fail (ARIP_IS_SHARED_DICT (self), FALSE);
  g_return_val_if_fail (key != NULL, FALSE);

  reply = sync_op (self, ARIP_DICT_OP_REMOVE, g_variant_new ("(s)", key), error);
  if (reply != NULL)
    g_variant_get (reply, "(b)", &removed);
  return removed;
}

/**
 * arip_shared_dict_get_keys:
 * @self: a dictionary
 * @error: return location for a #GError
 *
 * Lists the keys that have a value now, as seen by every process.
 *
 * Returns: (transfer full) (nullable): the keys, in no order; %NULL with
 *   @error only in a child whose parent is gone
 */
GStrv
arip_shared_dict_get_keys (AripSharedDict  *self,
                           GError         **error)
{
  g_autoptr(GVariant) reply = NULL;
  GStrv keys = NULL;

  g_return_val_if_fail (ARIP_IS_SHARED_DICT (self), NULL);

  reply = sync_op (self, ARIP_DICT_OP_KEYS, NULL, error);
  if (reply != NULL)
    g_variant_get (reply, "(^as)", &keys);
  return keys;
}

/**
 * arip_shared_dict_replace:
 * @self: a dictionary
 * @key: the key
 * @expected: (nullable): the value @key must have (compared with
 *   g_variant_equal()), or %NULL for none; a floating reference is sunk
 * @value: the new value; a floating reference is sunk
 * @error: return location for a #GError
 *
 * Sets @key to @value if, and only if, its value is @expected, in one
 * step that no other process's change can come between.
 *
 * Returns: %TRUE if it was replaced
 */
gboolean
arip_shared_dict_replace (AripSharedDict  *self,
                          const char      *key,
                          GVariant        *expected,
                          GVariant        *value,
                          GError         **error)
{
  g_autoptr(GVariant) reply = NULL;
  gboolean replaced = FALSE;

  g_return_val_if_fail (ARIP_IS_SHARED_DICT (self), FALSE);
  g_return_val_if_fail (key != NULL && value != NULL, FALSE);

  reply = sync_op (self, ARIP_DICT_OP_REPLACE, replace_arg (key, expected, value), error);
  if (reply != NULL)
    g_variant_get (reply, "(b)", &replaced);
  return replaced;
}

/**
 * arip_shared_dict_set_async:
 * @self: a dictionary
 * @key: the key
 * @value: its value; a floating reference is sunk
 * @cancellable: (nullable): a #GCancellable
 * @callback: called once it is set
 * @user_data: data for @callback
 *
 * Sets @key to @value without blocking.
 */
void
arip_shared_dict_set_async (AripSharedDict      *self,
                            const char          *key,
                            GVariant            *value,
                            GCancellable        *cancellable,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  g_return_if_fail (ARIP_IS_SHARED_DICT (self));
  g_return_if_fail (key != NULL && value != NULL);

  arip_shared_request_async (ARIP_SHARED (self), ARIP_DICT_OP_SET,
                             g_variant_new ("(sv)", key, value), NULL, cancellable, callback,
                             user_data, arip_shared_dict_set_async);
}

/**
 * arip_shared_dict_set_finish:
 * @self: a dictionary
 * @result: the result given to the callback
 * @error: return location for a #GError
 *
 * Finishes arip_shared_dict_set_async().
 *
 * Returns: %TRUE if it was set
 */
gboolean
arip_shared_dict_set_finish (AripSharedDict  *self,
                             GAsyncResult    *result,
                             GError         **error)
{
  g_autoptr(GVariant) reply = arip_shared_request_finish (ARIP_SHARED (self), result, NULL, error);

  return reply != NULL;
}

/**
 * arip_shared_dict_lookup_async:
 * @self: a dictionary
 * @key: the key
 * @cancellable: (nullable): a #GCancellable
 * @callback: called with the value
 * @user_data: data for @callback
 *
 * Looks @key up without blocking.
 */
void
arip_shared_dict_lookup_async (AripSharedDict      *self,
                               const char          *key,
                               GCancellable        *cancellable,
                               GAsyncReadyCallback  callback,
                               gpointer             user_data)
{
  g_return_if_fail (ARIP_IS_SHARED_DICT (self));
  g_return_if_fail (key != NULL);

  arip_shared_request_async (ARIP_SHARED (self), ARIP_DICT_OP_LOOKUP, g_variant_new ("(s)", key),
                             NULL, cancellable, callback, user_data,
                             arip_shared_dict_lookup_async);
}

/**
 * arip_shared_dict_lookup_finish:
 * @self: a dictionary
 * @result: the result given to the callback
 * @error: return location for a #GError
 *
 * Finishes arip_shared_dict_lookup_async().
 *
 * Returns: (transfer full) (nullable): the value, or %NULL: none (@error
 *   unset), or a failure
 */
GVariant *
arip_shared_dict_lookup_finish (AripSharedDict  *self,
                                GAsyncResult    *result,
                                GError         **error)
{
  g_autoptr(GVariant) reply = arip_shared_request_finish (ARIP_SHARED (self), result, NULL, error);
  GVariant *value = NULL;

  if (reply != NULL)
    g_variant_get (reply, "(mv)", &value);
  return value;
}

/**
 * arip_shared_dict_replace_async:
 * @self: a dictionary
 * @key: the key
 * @expected: (nullable): the value @key must have, or %NULL for none
 * @value: the new value
 * @cancellable: (nullable): a #GCancellable
 * @callback: called once it is decided
 * @user_data: data for @callback
 *
 * arip_shared_dict_replace() without blocking.
 */
void
arip_shared_dict_replace_async (AripSharedDict      *self,
                                const char          *key,
                                GVariant            *expected,
                                GVariant            *value,
                                GCancellable        *cancellable,
                                GAsyncReadyCallback  callback,
                                gpointer             user_data)
{
  g_return_if_fail (ARIP_IS_SHARED_DICT (self));
  g_return_if_fail (key != NULL && value != NULL);

  arip_shared_request_async (ARIP_SHARED (self), ARIP_DICT_OP_REPLACE,
                             replace_arg (key, expected, value), NULL, cancellable, callback,
                             user_data, arip_shared_dict_replace_async);
}

/**
 * arip_shared_dict_replace_finish:
 * @self: a dictionary
 * @result: the result given to the callback
 * @error: return location for a #GError
 *
 * Finishes arip_shared_dict_replace_async().
 *
 * Returns: %TRUE if it was replaced
 */
gboolean
arip_shared_dict_replace_finish (AripSharedDict  *self,
                                 GAsyncResult    *result,
                                 GError         **error)
{
  g_autoptr(GVariant) reply = arip_shared_request_finish (ARIP_SHARED (self), result, NULL, error);
  gboolean replaced = FALSE;

  if (reply != NULL)
    g_variant_get (reply, "(b)", &replaced);
  return replaced;
}
