/* arip-memfd.c: large values in sealed memfds
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A large value crosses the channel as a descriptor instead of bytes: the
 * sender serializes it straight into a memfd, seals it (so that nobody can
 * change it any more, not even the sender), and sends the descriptor; the
 * receiver checks the seals and the size, and maps it. The kernel copies
 * nothing, and the receiver's GVariant is the mapping itself; sent on,
 * such a value goes as the same memfd.
 */
#define _GNU_SOURCE 1
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gi18n-lib.h>

#include "arip-error.h"
#include "arip-memfd.h"
#include "arip-memfd-private.h"
#include "arip-normal-form-private.h"

/* Values that arrived in a memfd and are still mapped, by the address of
 * their bytes: sent on (a worker returning what it was given, a parent
 * passing a result to the next call), they go as the same memfd, with no
 * copy at all. Each keeps its descriptor open for that, up to a bound. */
#define MAX_KEPT_MEMFDS 64

typedef struct {
  gpointer data;
  gsize    size;
  gint     fd;      /* -1 once past the bound */
} Mapping;

static GMutex kept_lock;
static GHashTable *kept;   /* data -> Mapping */

/* A new descriptor for the memfd whose mapping holds exactly @value's
 * bytes, or -1. */
static gint
dup_kept (GVariant *value)
{
  gconstpointer data = g_variant_get_data (value);
  Mapping *mapping;
  gint fd = -1;

  g_mutex_lock (&kept_lock);
  mapping = kept != NULL && data != NULL ? g_hash_table_lookup (kept, data) : NULL;
  if (mapping != NULL && mapping->size == g_variant_get_size (value))
    fd = fcntl (mapping->fd, F_DUPFD_CLOEXEC, 3);
  g_mutex_unlock (&kept_lock);
  return fd;
}

/* The serialized bytes of @value, if they are at hand without building
 * them: a fixed-size array or a string (values made from data are), or a
 * tuple of just one of those, whose bytes are the same. NULL otherwise:
 * then the value is serialized straight into the memfd. */
static const guint8 *
contiguous_bytes (GVariant *value)
{
  g_autoptr(GVariant) leaf = g_variant_ref (value);
  const GVariantType *type;

  while (g_variant_is_of_type (leaf, G_VARIANT_TYPE_TUPLE) && g_variant_n_children (leaf) == 1)
    {
      GVariant *child = g_variant_get_child_value (leaf, 0);

      if (g_variant_get_size (child) != g_variant_get_size (leaf))
        {
          g_variant_unref (child);
          return NULL;
        }
      g_variant_unref (leaf);
      leaf = child;
    }

  type = g_variant_get_type (leaf);
  if (!(g_variant_type_is_array (type) &&
        g_variant_type_is_basic (g_variant_type_element (type)) &&
        !g_variant_type_equal (g_variant_type_element (type), G_VARIANT_TYPE_STRING) &&
        !g_variant_type_equal (g_variant_type_element (type), G_VARIANT_TYPE_OBJECT_PATH) &&
        !g_variant_type_equal (g_variant_type_element (type), G_VARIANT_TYPE_SIGNATURE)) &&
      !g_variant_type_equal (type, G_VARIANT_TYPE_STRING))
    return NULL;
  /* The leaf lives as long as @value, which holds it. */
  return g_variant_get_data (leaf);
}

/* Whether memfds get transparent huge pages only for mappings that ask
 * (the kernel's shmem setting is "advise"). With "within_size" or "always"
 * they get them as they are written anyway; with "never" (Debian's
 * default) not at all. A 64 MiB value in 2 MiB pages is written in a fifth
 * of the time and mapped by the receiver in a fiftieth. */
static gboolean
huge_pages_on_request (void)
{
  static gsize checked;
  static gboolean advise;

  if (g_once_init_enter (&checked))
    {
      g_autofree char *setting = NULL;

      if (g_file_get_contents ("/sys/kernel/mm/transparent_hugepage/shmem_enabled",
                               &setting, NULL, NULL))
        advise = strstr (setting, "[advise]") != NULL;
      g_once_init_leave (&checked, 1);
    }
  return advise;
}

/* Values this large are worth a huge page. */
#define HUGE_PAGE_SIZE ((gsize) 2 * 1024 * 1024)

gint
arip_memfd_new_for_value (GVariant  *value,
                          GError   **error)
{
  gsize size = g_variant_get_size (value);
  gint fd = dup_kept (value);
  const guint8 *bytes;
  gboolean huge;

  if (fd >= 0)
    return fd;
  fd = memfd_create ("arip-value", MFD_CLOEXEC | MFD_ALLOW_SEALING);

  if (fd < 0)
    {
      int saved_errno = errno;
      g_set_error (error, ARIP_ERROR, ARIP_ERROR_FAILED,
                   _("Could not create a memfd for a value of %llu bytes: %s"),
                   (unsigned long long) size, g_strerror (saved_errno));
      return -1;
    }

  bytes = size > 0 ? contiguous_bytes (value) : NULL;
  huge = size >= HUGE_PAGE_SIZE && huge_pages_on_request ();

  if (bytes != NULL && !huge)
    {
      /* One pass: the kernel copies into fresh pages it need not zero. */
      for (gsize done = 0; done < size; )
        {
          gssize n = pwrite (fd, bytes + done, MIN (size - done, (gsize) 1 << 24), (off_t) done);

          if (n < 0 && errno == EINTR)
            continue;
          if (n <= 0)
            goto no_memory;
          done += (gsize) n;
        }
    }
  else if (size > 0)
    {
      gpointer map;

      if (ftruncate (fd, (off_t) size) < 0)
        goto no_memory;
      /* Populated at once: one pass over the pages instead of a fault per
       * page as the value is written; or, where huge pages come on
       * request, asked for them (a fault per 2 MiB). */
      map = mmap (NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | (huge ? 0 : MAP_POPULATE), fd, 0);
      if (map == MAP_FAILED)
        goto no_memory;
      if (huge)
        madvise (map, size, MADV_HUGEPAGE);
      if (bytes != NULL)
        memcpy (map, bytes, size);
      else
        g_variant_store (value, map);
      /* Sealing against writes needs every writable mapping gone. */
      munmap (map, size);
    }

  if (fcntl (fd, F_ADD_SEALS, ARIP_MEMFD_SEALS) < 0)
    {
      int saved_errno = errno;
      close (fd);
      g_set_error (error, ARIP_ERROR, ARIP_ERROR_FAILED, _("Could not seal a memfd: %s"),
                   g_strerror (saved_errno));
      return -1;
    }
  return fd;

no_memory:
  {
    int saved_errno = errno;
    g_autofree char *what = g_format_size_full (size, G_FORMAT_SIZE_LONG_FORMAT);

    close (fd);
    g_set_error (error, ARIP_ERROR, ARIP_ERROR_NO_MEMORY,
                 _("Could not make room for a value of %s: %s"), what, g_strerror (saved_errno));
    return -1;
  }
}

static void
unmap (gpointer user_data)
{
  Mapping *mapping = user_data;

  if (mapping->fd >= 0)
    {
      g_mutex_lock (&kept_lock);
      g_hash_table_remove (kept, mapping->data);
      g_mutex_unlock (&kept_lock);
      close (mapping->fd);
    }
  munmap (mapping->data, mapping->size);
  g_free (mapping);
}

GBytes *
arip_memfd_map (gint      fd,
                guint64   size,
                GError  **error)
{
  struct stat st;
  Mapping *mapping;
  gpointer data;
  int seals = fcntl (fd, F_GET_SEALS);

  if (seals < 0)
    {
      close (fd);
      g_set_error (error, ARIP_ERROR, ARIP_ERROR_INVALID_DATA,
                   _("a value in a descriptor that is not a memfd"));
      return NULL;
    }
  if ((seals & ARIP_MEMFD_SEALS) != ARIP_MEMFD_SEALS)
    {
      close (fd);
      g_set_error (error, ARIP_ERROR, ARIP_ERROR_INVALID_DATA,
                   _("a value in a memfd that is not sealed (its sender could still change it)"));
      return NULL;
    }
  if (fstat (fd, &st) < 0 || (guint64) st.st_size != size)
    {
      close (fd);
      g_set_error (error, ARIP_ERROR, ARIP_ERROR_INVALID_DATA,
                   _("a value in a memfd of %llu bytes, not the %llu announced"),
                   (unsigned long long) st.st_size, (unsigned long long) size);
      return NULL;
    }
  if (size == 0)
    {
      close (fd);
      return g_bytes_new (NULL, 0);
    }
  if (size > G_MAXSIZE)
    {
      close (fd);
      g_set_error (error, ARIP_ERROR, ARIP_ERROR_NO_MEMORY,
                   _("a value of %llu bytes does not fit this process"),
                   (unsigned long long) size);
      return NULL;
    }

  /* Private and writable: reading maps the memfd's pages (no copy), and
   * a binding that hands the bytes out as writable memory (GJS's
   * Uint8Array over GLib.Bytes.toArray()) gets copy-on-write pages
   * instead of a crash on the first write. Nobody else sees such writes:
   * the value passed on is the memfd as it was sealed. */
  data = mmap (NULL, (gsize) size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  if (data == MAP_FAILED)
    {
      int saved_errno = errno;
      close (fd);
      g_autofree char *what = g_format_size_full (size, G_FORMAT_SIZE_LONG_FORMAT);

      g_set_error (error, ARIP_ERROR, ARIP_ERROR_NO_MEMORY,
                   _("there is not enough memory in this process to map a value of %s: %s"),
                   what, g_strerror (saved_errno));
      return NULL;
    }

  mapping = g_new (Mapping, 1);
  mapping->data = data;
  mapping->size = (gsize) size;
  mapping->fd = -1;
  g_mutex_lock (&kept_lock);
  if (kept == NULL)
    kept = g_hash_table_new (NULL, NULL);
  if (g_hash_table_size (kept) < MAX_KEPT_MEMFDS)
    {
      mapping->fd = fd;
      g_hash_table_insert (kept, data, mapping);
    }
  g_mutex_unlock (&kept_lock);
  if (mapping->fd < 0)
    close (fd);
  return g_bytes_new_with_free_func (data, (gsize) size, unmap, mapping);
}

/**
 * arip_variant_new_from_memfd:
 * @fd: a memfd holding the serialized value, sealed with `F_SEAL_WRITE`,
 *   `F_SEAL_SHRINK`, `F_SEAL_GROW` and `F_SEAL_SEAL`; it stays the
 *   caller's (arip keeps a duplicate)
 * @type: the value's type
 * @error: return location for a #GError
 *
 * Makes a value whose serialized bytes are the contents of @fd, without
 * copying them: the value is a read-only mapping of the memfd. Sent to
 * another process (a call's arguments or result, a message, a queue item),
 * it travels as that memfd, so a large value written once into a memfd
 * (`write()` from wherever it is) reaches the other side with no further
 * copy. This is how the Python layer sends large bytes.
 *
 * The contents must be @type's serialized form in normal form (as
 * g_variant_get_data() gives it); they are checked, in constant time for
 * a fixed-size array such as "ay".
 *
 * Returns: (transfer full): the value, or %NULL with @error set:
 *   %ARIP_ERROR_INVALID_DATA if @fd is not a sealed memfd or does not hold
 *   a value of @type in normal form, %ARIP_ERROR_NO_MEMORY if it cannot be
 *   mapped
 */
GVariant *
arip_variant_new_from_memfd (gint                 fd,
                             const GVariantType  *type,
                             GError             **error)
{
  g_autoptr(GBytes) bytes = NULL;
  struct stat st;
  gint dup;

  g_return_val_if_fail (fd >= 0, NULL);
  g_return_val_if_fail (type != NULL && g_variant_type_is_definite (type), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  dup = fcntl (fd, F_DUPFD_CLOEXEC, 3);
  if (dup < 0 || fstat (dup, &st) < 0)
    {
      int saved_errno = errno;

      if (dup >= 0)
        close (dup);
      g_set_error (error, ARIP_ERROR, ARIP_ERROR_INVALID_DATA,
                   _("Could not use descriptor %d for a value: %s"), fd, g_strerror (saved_errno));
      return NULL;
    }
  bytes = arip_memfd_map (dup, (guint64) st.st_size, error);
  if (bytes == NULL)
    return NULL;
  {
    g_autofree char *type_string = g_variant_type_dup_string (type);
    gsize size;
    gconstpointer data = g_bytes_get_data (bytes, &size);
    int normal = arip_normal_form_check (type_string, data, size);
    g_autoptr(GVariant) value =
      g_variant_ref_sink (g_variant_new_from_bytes (type, bytes, normal == 1));

    if (normal == 0 || (normal < 0 && !g_variant_is_normal_form (value)))
      {
        g_set_error (error, ARIP_ERROR, ARIP_ERROR_INVALID_DATA,
                     _("The memfd does not hold a value of type “%s” in normal form"),
                     type_string);
        return NULL;
      }
    return g_steal_pointer (&value);
  }
}

/**
 * arip_variant_dup_memfd:
 * @value: a value
 * @offset: (out) (optional): where @value's bytes begin in the memfd
 *
 * A descriptor for the memfd that holds @value's serialized bytes, when
 * @value (or the value it is part of) arrived from another process in a
 * memfd, or was made by arip_variant_new_from_memfd(). Mapping it again
 * gives a view of the bytes that outlives @value, with no copy (the Python
 * layer hands out large `memoryview` results this way); `pread()` reads
 * them without faulting in a mapping. The memfd is sealed: nobody can
 * change it. Ask about values that are serialized (received ones are): a
 * value built from parts is serialized by the question, a copy of all of
 * it, only to answer -1.
 *
 * Returns: a new descriptor (close-on-exec; close it when done), or -1 if
 *   @value's bytes are not in a memfd arip holds
 */
gint
arip_variant_dup_memfd (GVariant *value,
                        guint64  *offset)
{
  const guint8 *data;
  gsize size;
  GHashTableIter iter;
  Mapping *mapping;
  gint fd = -1;

  g_return_val_if_fail (value != NULL, -1);

  data = g_variant_get_data (value);
  size = g_variant_get_size (value);
  if (data == NULL || size == 0)
    return -1;
  g_mutex_lock (&kept_lock);
  if (kept != NULL)
    {
      g_hash_table_iter_init (&iter, kept);
      while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &mapping))
        {
          const guint8 *start = mapping->data;

          if (data >= start && size <= mapping->size && (gsize) (data - start) <= mapping->size - size)
            {
              fd = fcntl (mapping->fd, F_DUPFD_CLOEXEC, 3);
              if (fd >= 0 && offset != NULL)
                *offset = (guint64) (data - start);
              break;
            }
        }
    }
  g_mutex_unlock (&kept_lock);
  return fd;
}
