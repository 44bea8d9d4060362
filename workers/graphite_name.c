/* graphite_name: see graphite_name.h. */
#include "graphite_name.h"

bool graphite_name_char(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == ':' || c == '-';
}

const char *graphite_name_problem(const char *s, size_t n)
{
    if (n == 0)
        return "empty name";
    if (n > GRAPHITE_NAME_MAX)
        return "name longer than 1000 bytes";
    size_t comp = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.') {
            if (comp == 0)
                return "empty component (a leading, trailing or doubled '.')";
            comp = 0;
        } else if (!graphite_name_char((unsigned char) s[i])) {
            return "character outside [A-Za-z0-9_:-] in a component";
        } else if (++comp > GRAPHITE_COMPONENT_MAX) {
            return "component longer than 250 bytes";
        }
    }
    return comp ? NULL : "empty component (a leading, trailing or doubled '.')";
}
