/* arip-shared-memory.c: bytes mapped in several processes
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#define _GNU_SOURCE 1
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gi18n-lib.h>

#include "arip-error.h"
#include "arip-shared-memory.h"
#include "arip-shared-private.h"

/**
 * AripSharedMemory:
 *
 * Bytes that every process holding the object sees, read-write: the same
 * pages, mapped in each (a memfd). For arrays too big to copy; guard
 * concurrent writes with an #AripLock, or give each process its own part.
 *
 * Its size is fixed: no process can shrink it under the others (the
 * memfd is sealed against it), so a hostile child cannot make the parent
 * fault on its mapping.
 */

struct _AripSharedMemory {
  AripShared parent_instance;
  gpointer   data;
  gsize      size;
};

G_DEFINE_FINAL_TYPE (AripSharedMemory, arip_shared_memory, ARIP_TYPE_SHARED)

typedef struct {
  AripSharedState parent;
  gint            fd;
  gsize           size;
} SharedMemoryState;

static void
shared_memory_run (AripSharedState *state,
                   AripWaiter      *waiter)
{
  arip_waiter_return_error (waiter, NULL, ARIP_ERROR, ARIP_ERROR_INVALID_DATA,
                            _("Shared memory has no operation %u"), waiter->op);
}

static GVariant *
shared_memory_describe (AripSharedState *state,
                        GUnixFDList     *fds)
{
  SharedMemoryState *shm = (SharedMemoryState *) state;
  gint index = g_unix_fd_list_append (fds, shm->fd, NULL);

  return g_variant_new ("(th)", (guint64) shm->size, index);
}

static void
shared_memory_finalize (AripSharedState *state)
{
  close (((SharedMemoryState *) state)->fd);
}

static gpointer
map (gint    fd,
     gsize   size,
     GError **error)
{
  gpointer data;

  if (size == 0)
    return NULL;
  data = mmap (NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (data == MAP_FAILED)
    {
      int saved_errno = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
                   _("Could not map %" G_GSIZE_FORMAT " bytes of shared memory: %s"),
                   size, g_strerror (saved_errno));
      return MAP_FAILED;
    }
  return data;
}

static gboolean
shared_memory_opened (AripShared   *object,
                      GVariant     *info,
                      GUnixFDList  *fds,
                      GError      **error)
{
  AripSharedMemory *self = ARIP_SHARED_MEMORY (object);
  guint64 size;
  gint32 index;
  gint fd;
  struct stat st;
  gint seals;

  if (!g_variant_is_of_type (info, G_VARIANT_TYPE ("(th)")))
    goto wrong;
  g_variant_get (info, "(th)", &size, &index);
  if (fds == NULL || index < 0 || index >= g_unix_fd_list_get_length (fds))
    goto wrong;
  fd = g_unix_fd_list_get (fds, index, error);
  if (fd < 0)
    return FALSE;
  /* Only what the parent made: the size it says, which nobody can change. */
  seals = fcntl (fd, F_GET_SEALS);
  if (fstat (fd, &st) < 0 || (guint64) st.st_size != size || size > G_MAXSIZE ||
      seals < 0 || (seals & (F_SEAL_SHRINK | F_SEAL_GROW)) != (F_SEAL_SHRINK | F_SEAL_GROW))
    {
      close (fd);
      goto wrong;
    }
  self->data = map (fd, size, error);
  close (fd);
  if (self->data == MAP_FAILED)
    {
      self->data = NULL;
      return FALSE;
    }
  self->size = size;
  return TRUE;

wrong:
  g_set_error_literal (error, ARIP_ERROR, ARIP_ERROR_INVALID_DATA,
                       _("The parent described the shared memory wrongly"));
  return FALSE;
}

const AripSharedStateClass arip_shared_memory_state_class = {
  .get_type = arip_shared_memory_get_type,
  .run = shared_memory_run,
  .withdraw = arip_waiter_withdraw_default,
  .describe = shared_memory_describe,
  .finalize = shared_memory_finalize,
  .opened = shared_memory_opened,
};

static void
arip_shared_memory_finalize (GObject *object)
{
  AripSharedMemory *self = ARIP_SHARED_MEMORY (object);

  if (self->data != NULL)
    munmap (self->data, self->size);

  G_OBJECT_CLASS (arip_shared_memory_parent_class)->finalize (object);
}

static void
arip_shared_memory_class_init (AripSharedMemoryClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = arip_shared_memory_finalize;
}

static void
arip_shared_memory_init (AripSharedMemory *self)
{
}

/**
 * arip_shared_memory_new:
 * @size: its size in bytes
 * @error: return location for a #GError
 *
 * New shared memory of @size bytes, all zero.
 *
 * Returns: (transfer full): the shared memory, or %NULL with @error set
 *   (no memory, or too many open files)
 */
AripSharedMemory *
arip_shared_memory_new (gsize    size,
                        GError **error)
{
  AripSharedMemory *self;
  SharedMemoryState *state;
  gpointer data;
  gint fd;

  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  fd = memfd_create ("arip-shared-memory", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0 || ftruncate (fd, (off_t) size) < 0 ||
      fcntl (fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
    {
      int saved_errno = errno;

      if (fd >= 0)
        close (fd);
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
                   _("Could not make %" G_GSIZE_FORMAT " bytes of shared memory: %s"),
                   size, g_strerror (saved_errno));
      return NULL;
    }
  data = map (fd, size, error);
  if (data == MAP_FAILED)
    {
      close (fd);
      return NULL;
    }

  self = g_object_new (ARIP_TYPE_SHARED_MEMORY, NULL);
  self->data = data;
  self->size = size;
  state = arip_shared_state_new (&arip_shared_memory_state_class, sizeof (SharedMemoryState),
                                 ARIP_SHARED (self));
  state->fd = fd;
  state->size = size;
  arip_shared_set_state (ARIP_SHARED (self), &state->parent);
  return self;
}

/**
 * arip_shared_memory_get_data:
 * @self: shared memory
 * @size: (out) (optional): its size
 *
 * The bytes, mapped read-write in this process while @self lives.
 *
 * Returns: (transfer none) (nullable): the first byte (%NULL for none)
 */
gpointer
arip_shared_memory_get_data (AripSharedMemory *self,
                             gsize            *size)
{
  g_return_val_if_fail (ARIP_IS_SHARED_MEMORY (self), NULL);

  if (size != NULL)
    *size = self->size;
  return self->data;
}

/**
 * arip_shared_memory_get_size:
 * @self: shared memory
 *
 * Gets the size the memory was made with; it never changes.
 *
 * Returns: its size in bytes
 */
gsize
arip_shared_memory_get_size (AripSharedMemory *self)
{
  g_return_val_if_fail (ARIP_IS_SHARED_MEMORY (self), 0);

  return self->size;
}
