/* A private directory per config test and the loading of a config text written into it, for
 * the config section tests (test_config_metrics.c, test_config_triggers.c). Header-only: each
 * test is one translation unit. tmp is the directory (canonical), conf its eventsd.conf. */
#ifndef EVENTSD_TEST_CONFIG_TEST_DIR_H
#define EVENTSD_TEST_CONFIG_TEST_DIR_H

#include "config.h"

#include <criterion/criterion.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char tmp[PATH_MAX];
static char conf[PATH_MAX + 32];

static inline void config_dir_setup(void)
{
    char tmpl[] = "/tmp/eventsd-test-config-XXXXXX";
    cr_assert(mkdtemp(tmpl) != NULL);
    cr_assert(realpath(tmpl, tmp) != NULL);
    snprintf(conf, sizeof conf, "%s/eventsd.conf", tmp);
}

static inline int config_dir_rm_entry(const char *path, const struct stat *st, int flag,
                                      struct FTW *ftw)
{
    (void) st, (void) flag, (void) ftw;
    return remove(path);
}

static inline void config_dir_teardown(void)
{
    if (tmp[0])
        nftw(tmp, config_dir_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Writes text as the directory's eventsd.conf and loads it. */
static inline eventsd_config_t *load_text(const char *text, char *err, size_t errlen)
{
    FILE *f = fopen(conf, "w");
    cr_assert(f != NULL);
    fputs(text, f);
    cr_assert(fclose(f) == 0);
    return config_load(conf, err, errlen);
}

#endif
