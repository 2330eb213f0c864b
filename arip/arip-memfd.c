/* arip-memfd.c: large values in sealed memfds
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A large value crosses the channel as a descriptor instead of bytes: the
 * sender serializes it straight into a memfd, seals it (so that nobody can
 * change it any more, not even the sender), and sends the descriptor; the
 * receiver checks the seals and the size, and maps it. The kernel copies
 * nothing, and the receiver's GVariant is the mapping itself.
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
#include "arip-memfd-private.h"

gint
arip_memfd_new_for_value (GVariant  *value,
                          GError   **error)
{
  gsize size = g_variant_get_size (value);
  gint fd = memfd_create ("arip-value", MFD_CLOEXEC | MFD_ALLOW_SEALING);

  if (fd < 0)
    {
      int saved_errno = errno;
      g_set_error (error, ARIP_ERROR, ARIP_ERROR_FAILED,
                   _("Could not create a memfd for a value of %" G_GSIZE_FORMAT " bytes: %s"),
                   size, g_strerror (saved_errno));
      return -1;
    }

  if (size > 0)
    {
      gpointer map;

      if (ftruncate (fd, (off_t) size) < 0)
        goto no_memory;
      /* Populated at once: one pass over the pages instead of a fault per
       * page as the value is written. */
      map = mmap (NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
      if (map == MAP_FAILED)
        goto no_memory;
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

typedef struct {
  gpointer data;
  gsize    size;
} Mapping;

static void
unmap (gpointer user_data)
{
  Mapping *mapping = user_data;

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
                   _("a value in a memfd of %" G_GUINT64_FORMAT " bytes, not the %" G_GUINT64_FORMAT
                     " announced"), (guint64) st.st_size, size);
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
                   _("a value of %" G_GUINT64_FORMAT " bytes does not fit this process"), size);
      return NULL;
    }

  data = mmap (NULL, (gsize) size, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
  close (fd);
  if (data == MAP_FAILED)
    {
      int saved_errno = errno;
      g_autofree char *what = g_format_size_full (size, G_FORMAT_SIZE_LONG_FORMAT);

      g_set_error (error, ARIP_ERROR, ARIP_ERROR_NO_MEMORY,
                   _("there is not enough memory in this process to map a value of %s: %s"),
                   what, g_strerror (saved_errno));
      return NULL;
    }

  mapping = g_new (Mapping, 1);
  mapping->data = data;
  mapping->size = (gsize) size;
  return g_bytes_new_with_free_func (data, (gsize) size, unmap, mapping);
}
