/* json_msgpack: see json_msgpack.h. json_tree yields the document depth-first, each row
 * naming its parent's id; rows are linked into first-child/next-sibling lists and packed
 * recursively (depth is bounded by SQLite's own JSON nesting limit). */
#include "json_msgpack.h"

#include <math.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    sqlite3_int64 id, parent;
    char         *key;        /* member name, NULL for array elements and the root */
    size_t        key_len;    /* keys and texts may hold "\u0000": lengths, not strlen */
    char         *type;       /* json_tree's type: object array integer real text true ... */
    char         *text;       /* the atom as text (integer, real, text) */
    size_t        text_len;
    bool          big;        /* an "integer" beyond int64: SQLite gives it as a real */
    sqlite3_int64 i;
    double        r;
    int           first_child, last_child, next_sibling, n_children;
} node_t;

typedef struct {
    node_t *nodes;
    int     n, cap;
} tree_t;

static char *dup_column(sqlite3_stmt *st, int col, size_t *len)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    size_t n = (size_t) sqlite3_column_bytes(st, col);
    char *d = t ? malloc(n + 1) : NULL;
    if (d) {
        memcpy(d, t, n);
        d[n] = '\0';
    }
    if (len)
        *len = n;
    return d;
}

static int find(const tree_t *t, sqlite3_int64 id)
{
    int lo = 0, hi = t->n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (t->nodes[mid].id == id)
            return mid;
        if (t->nodes[mid].id < id)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

static int add_row(tree_t *t, sqlite3_stmt *st)
{
    if (t->n == t->cap) {
        int cap = t->cap ? 2 * t->cap : 64;
        node_t *nodes = realloc(t->nodes, (size_t) cap * sizeof *nodes);
        if (!nodes)
            return -1;
        t->nodes = nodes;
        t->cap = cap;
    }
    node_t *n = &t->nodes[t->n];
    *n = (node_t){ .id = sqlite3_column_int64(st, 0), .first_child = -1, .last_child = -1,
                   .next_sibling = -1 };
    n->parent = sqlite3_column_type(st, 1) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 1);
    bool in_object = sqlite3_column_type(st, 2) == SQLITE_TEXT;
    n->key = in_object ? dup_column(st, 2, &n->key_len) : NULL;
    n->type = dup_column(st, 3, NULL);
    n->big = sqlite3_column_type(st, 4) == SQLITE_FLOAT;
    n->i = sqlite3_column_int64(st, 4);
    n->r = sqlite3_column_double(st, 4);
    n->text = dup_column(st, 4, &n->text_len);
    int bad = !n->type || (in_object && !n->key) ? -1 : 0;
    if (!bad && (n->big || strcmp(n->type, "real") == 0) && !isfinite(n->r))
        bad = 1;   /* 1e999: no double holds it, and Infinity is not JSON */
    if (bad) {
        free(n->key);
        free(n->type);
        free(n->text);
        return bad;
    }
    int index = t->n++;
    int p = n->parent >= 0 ? find(t, n->parent) : -1;
    if (p >= 0) {
        node_t *parent = &t->nodes[p];
        if (parent->last_child >= 0)
            t->nodes[parent->last_child].next_sibling = index;
        else
            parent->first_child = index;
        parent->last_child = index;
        parent->n_children++;
    }
    return 0;
}

static void pack_node(const tree_t *t, int i, msgpack_packer *pk)
{
    const node_t *n = &t->nodes[i];
    if (strcmp(n->type, "object") == 0 || strcmp(n->type, "array") == 0) {
        bool object = n->type[0] == 'o';
        if (object)
            msgpack_pack_map(pk, (size_t) n->n_children);
        else
            msgpack_pack_array(pk, (size_t) n->n_children);
        for (int c = n->first_child; c >= 0; c = t->nodes[c].next_sibling) {
            if (object) {
                const node_t *child = &t->nodes[c];
                msgpack_pack_str_with_body(pk, child->key ? child->key : "", child->key_len);
            }
            pack_node(t, c, pk);
        }
    } else if (strcmp(n->type, "integer") == 0 && !n->big) {
        msgpack_pack_int64(pk, n->i);
    } else if (strcmp(n->type, "real") == 0 || strcmp(n->type, "integer") == 0) {
        msgpack_pack_double(pk, n->r);
    } else if (strcmp(n->type, "text") == 0) {
        msgpack_pack_str_with_body(pk, n->text ? n->text : "", n->text_len);
    } else if (strcmp(n->type, "true") == 0) {
        msgpack_pack_true(pk);
    } else if (strcmp(n->type, "false") == 0) {
        msgpack_pack_false(pk);
    } else {
        msgpack_pack_nil(pk);
    }
}

static void tree_free(tree_t *t)
{
    for (int i = 0; i < t->n; i++) {
        free(t->nodes[i].key);
        free(t->nodes[i].type);
        free(t->nodes[i].text);
    }
    free(t->nodes);
}

static int read_tree(sqlite3 *db, const char *json, tree_t *t, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    const char *sql = "SELECT id, parent, key, type, atom FROM json_tree(?1) "
                      "WHERE json_valid(?1) ORDER BY id";
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, 1, json, -1, SQLITE_STATIC);
    while (rc == SQLITE_OK || rc == SQLITE_ROW) {
        rc = sqlite3_step(st);
        int added = rc == SQLITE_ROW ? add_row(t, st) : 0;
        if (added != 0) {
            snprintf(err, errlen, added > 0 ? "not valid JSON: a number beyond a double's range"
                                            : "out of memory");
            sqlite3_finalize(st);
            return -1;
        }
    }
    if (rc != SQLITE_DONE)
        snprintf(err, errlen, "not valid JSON: %s", sqlite3_errmsg(db));
    else if (t->n == 0)
        snprintf(err, errlen, "not valid JSON");
    sqlite3_finalize(st);
    return rc == SQLITE_DONE && t->n > 0 ? 0 : -1;
}

/* SQLite's JSON functions cut a string at an escaped NUL, so such input is refused rather
 * than turned into a shorter string. Escapes are skipped pairwise ("\\u0000" is fine). */
static bool has_escaped_nul(const char *json)
{
    for (const char *p = json; *p; p++) {
        if (*p != '\\')
            continue;
        if (p[1] == 'u' && p[2] == '0' && p[3] == '0' && p[4] == '0' && p[5] == '0')
            return true;
        if (p[1])
            p++;
    }
    return false;
}

int json_to_msgpack(const char *json, msgpack_sbuffer *out, char *err, size_t errlen)
{
    if (has_escaped_nul(json)) {
        snprintf(err, errlen, "not supported: \\u0000 in a string");
        return -1;
    }
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot open SQLite: %s", db ? sqlite3_errmsg(db) : "no memory");
        sqlite3_close(db);
        return -1;
    }
    tree_t t = { 0 };
    int rc = read_tree(db, json, &t, err, errlen);
    if (rc == 0) {
        msgpack_packer pk;
        msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
        pack_node(&t, 0, &pk);
    }
    tree_free(&t);
    sqlite3_close(db);
    return rc;
}
