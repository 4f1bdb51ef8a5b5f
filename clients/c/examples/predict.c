/*
 * predict: prices one diamond through a Loupe server.
 *
 *   predict [HOST:PORT] [CARAT CUT COLOR CLARITY DEPTH TABLE X Y Z]
 *   LOUPE_TOKEN=... predict 127.0.0.1:7070 1.01 Ideal G VS1 61.8 56 6.43 6.47 3.99
 *
 * The token comes from $LOUPE_TOKEN (the library itself never reads the environment).
 */
#include <loupe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    const char *address = argc > 1 ? argv[1] : "127.0.0.1:7070";
    const char *token = getenv("LOUPE_TOKEN");
    loupe_diamond d = {1.01, LOUPE_CUT_IDEAL, LOUPE_COLOR_G, LOUPE_CLARITY_VS1,
                       61.8, 56, 6.43, 6.47, 3.99};
    if (argc == 11) {
        d = (loupe_diamond){atof(argv[2]), loupe_parse_cut(argv[3]),
                            loupe_parse_color(argv[4]), loupe_parse_clarity(argv[5]),
                            atof(argv[6]), atof(argv[7]), atof(argv[8]), atof(argv[9]),
                            atof(argv[10])};
    } else if (argc != 1 && argc != 2) {
        fprintf(stderr, "usage: predict [HOST:PORT] [CARAT CUT COLOR CLARITY DEPTH TABLE X Y Z]\n");
        return 2;
    }

    char host[256];
    const char *colon = strrchr(address, ':');
    if (!colon || colon == address || (size_t)(colon - address) >= sizeof host) {
        fprintf(stderr, "predict: expected HOST:PORT, got \"%s\"\n", address);
        return 2;
    }
    memcpy(host, address, (size_t)(colon - address));
    host[colon - address] = '\0';

    loupe_options *o = loupe_options_new();
    if (!o) return 1;
    loupe_options_set_host(o, host);
    if (loupe_options_set_port(o, atoi(colon + 1)) != LOUPE_OK) {
        fprintf(stderr, "predict: bad port in \"%s\"\n", address);
        loupe_options_free(o);
        return 2;
    }
    loupe_options_set_token(o, token);
    loupe_options_set_client_name(o, "predict-example libloupe/" LOUPE_VERSION);
    loupe_client *c = loupe_connect(o);
    loupe_options_free(o); /* the client keeps its own copy */
    if (!c) return 1;
    if (loupe_errcode(c) != LOUPE_OK) {
        fprintf(stderr, "predict: %s: %s\n", loupe_code_name(loupe_errcode(c)), loupe_errmsg(c));
        loupe_free(c);
        return 1;
    }

    loupe_predict_options po = {0};
    po.level = 0.9;
    loupe_result *r = loupe_predict(c, &d, &po);
    if (!r) {
        fprintf(stderr, "predict: %s: %s\n", loupe_code_name(loupe_errcode(c)), loupe_errmsg(c));
        for (size_t i = 0; i < loupe_err_detail_count(c); i++) {
            const char *field, *reason;
            loupe_err_detail(c, i, NULL, &field, &reason);
            fprintf(stderr, "  %s: %s\n", field, reason);
        }
        loupe_free(c);
        return 1;
    }
    loupe_price p = loupe_result_price(r, 0);
    printf("$%.0f  (%.0f%% range $%.0f - $%.0f)  [%s v%u]\n", p.price,
           100 * loupe_result_level(r), p.low, p.high, loupe_result_model_name(r),
           loupe_result_model_version(r));
    loupe_result_free(r);
    loupe_free(c);
    return 0;
}
