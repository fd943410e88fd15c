/*
 * gen-kaggle.c - write a synthetic clickstream CSV in the format of Kaggle's
 * "eCommerce behavior data from multi category store" (2019-Oct.csv).
 *
 *   cc -O2 -o gen-kaggle scripts/gen-kaggle.c -lm
 *   ./gen-kaggle -n 5000000 -s 1 -o events.csv
 *
 * Deterministic for a given seed, row count and options. Not part of libcs:
 * the benchmarks compile it on the fly.
 *
 * The model, in four layers, each with its knobs in struct knobs below:
 *   catalogue  ~200k products with Zipf popularity; each has a fixed
 *              category (id, code or empty), brand (or empty) and price.
 *              Categories carry a "return factor" (remove_from_cart rate).
 *   users      a pool of users with Zipf-like activity, so many have several
 *              sessions; each has a favourite category (its taste).
 *   sessions   arrive over the month (a daily cycle), length heavy-tailed
 *              (discretised log-normal, 1 to max_len events), gaps between
 *              events log-normal. Sessions interleave: a heap emits the
 *              earliest next event, so times never decrease.
 *   actions    next_action() picks each event from the session's state:
 *              views (new items from the focus category, or revisits),
 *              cart after views, purchase and remove_from_cart of carted
 *              items. Signal for a model lives there: purchase probability
 *              rises with the item's views and the cart size; removals
 *              depend on the category's return factor.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------ knobs */

struct knobs {
	/* catalogue */
	long nproducts;         /* products in the catalogue */
	int ncategories;        /* category ids */
	int nbrands;            /* distinct brand names */
	double zipf_item;       /* exponent of product popularity */
	double zipf_cat;        /* exponent of category size */
	double p_no_code;       /* a category has an empty category_code */
	double p_no_brand;      /* a product has an empty brand */
	/* users */
	double rows_per_user;   /* pool size = rows / this */
	double user_skew;       /* user index = pool * u^skew: >1 favours heavy users */
	/* sessions */
	double len_mu, len_sigma; /* log-normal length before ceil() */
	int max_len;            /* longest session */
	double gap_mu, gap_sigma; /* log-normal gap between events, seconds */
	int max_gap;
	/* actions */
	double p_taste;         /* the session's focus is the user's favourite */
	double p_focus;         /* a new item comes from the focus category */
	double p_revisit;       /* a view returns to an item seen in this session */
	double cart_base;       /* P(cart the item just viewed) ... */
	double cart_per_view;   /* ... + this per earlier view of it */
	double cart_max;
	double buy_base;        /* P(buy a carted item at a step) ... */
	double buy_per_view;    /* ... + this per view of it (up to 10) ... */
	double buy_per_cart;    /* ... + this per other item in the cart */
	double remove_base;     /* P(remove a carted item) x category return factor */
};

static const struct knobs defaults = {
	.nproducts = 200000, .ncategories = 600, .nbrands = 3000,
	.zipf_item = 0.9, .zipf_cat = 1.0, .p_no_code = 0.3, .p_no_brand = 0.15,
	.rows_per_user = 14.0, .user_skew = 1.5,
	.len_mu = 0.9, .len_sigma = 1.2, .max_len = 1000,
	.gap_mu = 2.7, .gap_sigma = 1.2, .max_gap = 3600,
	.p_taste = 0.6, .p_focus = 0.8, .p_revisit = 0.3,
	.cart_base = 0.02, .cart_per_view = 0.05, .cart_max = 0.4,
	.buy_base = 0.05, .buy_per_view = 0.03, .buy_per_cart = 0.02,
	.remove_base = 0.06,
};

#define MONTH_SECONDS (31L * 86400)  /* October 2019 */

/* ------------------------------------------------------------ random numbers */

/* xoshiro256** seeded through splitmix64. */
typedef struct rng { uint64_t s[4]; } rng;

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void rng_seed(rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t rng_u64(rng *r)
{
	uint64_t *s = r->s, out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
	s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
	s[2] ^= t; s[3] = rotl(s[3], 45);
	return out;
}

/* Uniform in [0, 1). */
static inline double rng_unif(rng *r) { return (rng_u64(r) >> 11) * 0x1.0p-53; }

/* Uniform integer in [0, n). */
static inline uint32_t rng_below(rng *r, uint32_t n) { return (uint32_t)((rng_u64(r) >> 32) * n >> 32); }

static double rng_normal(rng *r)
{
	double u = 1.0 - rng_unif(r), v = rng_unif(r);
	return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

/* Index i with cdf[i-1] <= u*cdf[n-1] < cdf[i]. */
static uint32_t sample_cdf(const double *cdf, uint32_t n, double u)
{
	double x = u * cdf[n - 1];
	uint32_t lo = 0, hi = n - 1;
	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		if (cdf[mid] > x)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p) {
		fprintf(stderr, "gen-kaggle: out of memory\n");
		exit(1);
	}
	return p;
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n);
	if (!p) {
		fprintf(stderr, "gen-kaggle: out of memory\n");
		exit(1);
	}
	return p;
}

/* Decimal digits of v into buf (no NUL); returns the length. */
static int utoa(char *buf, uint64_t v)
{
	char t[24];
	int n = 0;
	do
		t[n++] = (char)('0' + v % 10);
	while (v /= 10);
	for (int i = 0; i < n; i++)
		buf[i] = t[n - 1 - i];
	return n;
}

/* ------------------------------------------------------------ catalogue */

struct category {
	uint64_t id;
	char code[64];        /* "" when empty */
	double price_scale;   /* median price, in units */
	double return_factor; /* multiplies remove_base */
	uint32_t first, n;    /* its products in cat_products[], by popularity */
	double *cdf;          /* cumulative popularity of those products */
	double weight;        /* total popularity */
};

struct product {
	uint32_t cat;
	uint16_t len;         /* of text */
	char *text;           /* "product_id,category_id,category_code,brand,price" */
};

static struct category *cats;
static struct product *prods;   /* index = popularity rank */
static uint32_t *cat_products;  /* product ranks grouped by category */
static double *prod_cdf;        /* global popularity */
static double *cat_cdf;         /* categories by total popularity */

static const char *tops[] = {
	"electronics", "appliances", "computers", "furniture", "apparel",
	"construction", "kids", "auto", "sport", "accessories", "country_yard",
	"medicine", "stationery",
};
static const char *subs[] = {
	"smartphone", "audio", "video", "clocks", "telephone", "kitchen",
	"environment", "notebook", "desktop", "peripherals", "components",
	"living_room", "bedroom", "shoes", "costume", "tools", "toys", "bicycle",
	"accessories", "personal", "iron", "camera", "tablet", "bath",
};
static const char *leaves[] = {
	"headphone", "tv", "refrigerators", "washer", "vacuum", "air_heater",
	"player", "alarm", "sofa", "cabinet", "bed", "keds", "meat_grinder",
	"mouse", "keyboard", "printer", "drill", "carriage", "skates", "bag",
	"hair_cutter", "oven", "kettle", "blender", "chair", "table", "lamp",
};
static const char *syl[] = {
	"sam", "sung", "ap", "ple", "xi", "ao", "mi", "hua", "wei", "len", "ovo",
	"bo", "sch", "ph", "ilips", "so", "ny", "lu", "mo", "ri", "ka", "ta",
	"ne", "vi", "ro", "ze", "la", "to", "sha", "pa", "el", "ix", "on", "dex",
};

/* Build the catalogue: categories, brands and products, from its own seed. */
static void build_catalogue(const struct knobs *k, uint64_t seed)
{
	rng r;
	rng_seed(&r, seed ^ 0x63617461ULL);
	int nc = k->ncategories;
	cats = xmalloc(nc * sizeof *cats);
	double *csize = xmalloc(nc * sizeof *csize);
	for (int c = 0; c < nc; c++) {
		struct category *cat = &cats[c];
		memset(cat, 0, sizeof *cat);
		cat->id = 2053013552226107603ULL + (rng_u64(&r) % 1000000000000000ULL);
		if (rng_unif(&r) >= k->p_no_code) {
			const char *t = tops[rng_below(&r, sizeof tops / sizeof *tops)];
			const char *s = subs[rng_below(&r, sizeof subs / sizeof *subs)];
			if (rng_unif(&r) < 0.5)
				snprintf(cat->code, sizeof cat->code, "%s.%s", t, s);
			else
				snprintf(cat->code, sizeof cat->code, "%s.%s.%s", t, s,
					 leaves[rng_below(&r, sizeof leaves / sizeof *leaves)]);
		}
		cat->price_scale = exp(4.0 + 1.0 * rng_normal(&r));
		/* One category in eight returns things four times as often. */
		cat->return_factor = rng_unif(&r) < 0.125 ? 4.0 : 0.5 + rng_unif(&r);
		csize[c] = 1.0 / pow(c + 1, k->zipf_cat);
	}
	for (int c = 1; c < nc; c++)
		csize[c] += csize[c - 1];

	int nb = k->nbrands;
	char (*brands)[32] = xmalloc(nb * sizeof *brands);
	double *bcdf = xmalloc(nb * sizeof *bcdf);
	for (int b = 0; b < nb; b++) {
		int ns = 2 + (rng_below(&r, 3) == 0), n = 0;
		for (int i = 0; i < ns; i++)
			n += snprintf(brands[b] + n, sizeof brands[b] - n, "%s",
				      syl[rng_below(&r, sizeof syl / sizeof *syl)]);
		bcdf[b] = 1.0 / (b + 1) + (b ? bcdf[b - 1] : 0);
	}

	long np = k->nproducts;
	prods = xmalloc(np * sizeof *prods);
	prod_cdf = xmalloc(np * sizeof *prod_cdf);
	uint32_t *count = calloc(nc, sizeof *count);
	if (!count) {
		fprintf(stderr, "gen-kaggle: out of memory\n");
		exit(1);
	}
	for (long p = 0; p < np; p++) {
		struct product *pr = &prods[p];
		uint32_t c = sample_cdf(csize, nc, rng_unif(&r));
		pr->cat = c;
		count[c]++;
		/* product ids: an odd multiplier is a bijection mod 2^25 */
		uint64_t pid = 1000000 + (((uint64_t)p * 0x9E3779B1u + 12345) & ((1u << 25) - 1));
		const char *brand = rng_unif(&r) < k->p_no_brand ? ""
			: brands[sample_cdf(bcdf, nb, rng_unif(&r))];
		long cents = lround(100.0 * cats[c].price_scale * exp(0.5 * rng_normal(&r)));
		if (cents < 1)
			cents = 1;
		char buf[160];
		int n = snprintf(buf, sizeof buf, "%llu,%llu,%s,%s,%ld.%02ld",
				 (unsigned long long)pid, (unsigned long long)cats[c].id,
				 cats[c].code, brand, cents / 100, cents % 100);
		pr->text = xmalloc(n + 1);
		memcpy(pr->text, buf, n + 1);
		pr->len = (uint16_t)n;
		prod_cdf[p] = 1.0 / pow(p + 1, k->zipf_item) + (p ? prod_cdf[p - 1] : 0);
	}

	/* Group products by category, keeping popularity order within each. */
	cat_products = xmalloc(np * sizeof *cat_products);
	uint32_t off = 0;
	for (int c = 0; c < nc; c++) {
		cats[c].first = off;
		off += count[c];
	}
	for (int c = 0; c < nc; c++)
		count[c] = 0;
	for (long p = 0; p < np; p++) {
		struct category *cat = &cats[prods[p].cat];
		cat_products[cat->first + count[prods[p].cat]++] = (uint32_t)p;
	}
	cat_cdf = xmalloc(nc * sizeof *cat_cdf);
	for (int c = 0; c < nc; c++) {
		struct category *cat = &cats[c];
		cat->n = count[c];
		cat->cdf = xmalloc((cat->n ? cat->n : 1) * sizeof *cat->cdf);
		double s = 0;
		for (uint32_t i = 0; i < cat->n; i++) {
			s += 1.0 / pow(cat_products[cat->first + i] + 1, k->zipf_item);
			cat->cdf[i] = s;
		}
		cat->weight = s;
		cat_cdf[c] = s + (c ? cat_cdf[c - 1] : 0);
	}
	free(count);
	free(csize);
	free(brands);
	free(bcdf);
}

/* A product of category c by popularity (or of any category if it has none). */
static uint32_t pick_in_category(rng *r, const struct knobs *k, uint32_t c)
{
	const struct category *cat = &cats[c];
	if (cat->n == 0)
		return sample_cdf(prod_cdf, (uint32_t)k->nproducts, rng_unif(r));
	return cat_products[cat->first + sample_cdf(cat->cdf, cat->n, rng_unif(r))];
}

/* ------------------------------------------------------------ users */

/* A user's favourite category, drawn by popularity from the user's own seed. */
static uint32_t user_taste(uint64_t seed, uint32_t user, int ncat)
{
	uint64_t x = seed ^ ((uint64_t)user << 20) ^ 0x7573657273ULL;
	double u = (splitmix64(&x) >> 11) * 0x1.0p-53;
	return sample_cdf(cat_cdf, (uint32_t)ncat, u);
}

/* The printed user_id: a bijection of the pool index mod 2^26. */
static uint64_t user_id(uint32_t user)
{
	return 500000000 + (((uint64_t)user * 0x9E3779B1u) & ((1u << 26) - 1));
}

/* ------------------------------------------------------------ sessions */

struct sitem {
	uint32_t product;
	uint16_t views;
	uint8_t incart;
};

struct session {
	int64_t t;            /* time of the next event, seconds into the month */
	uint64_t order;       /* start order, breaks ties in the heap */
	uint32_t user, focus;
	int left;             /* events still to emit */
	int last;             /* items[] index of the last view, -1 if none */
	int ncart;
	int nitems, cap;
	struct sitem *items;
	char uid[16];         /* user_id text */
	int uidlen;
	char uuid[36];
};

/* Session length: ceil of a log-normal, clamped to [1, max_len]. */
static int session_length(rng *r, const struct knobs *k)
{
	double x = ceil(exp(k->len_mu + k->len_sigma * rng_normal(r)));
	return x < 1 ? 1 : x > k->max_len ? k->max_len : (int)x;
}

/* Expected session length, by summing the same distribution. */
static double mean_length(const struct knobs *k)
{
	double m = 0, prev = 0;
	for (int l = 1; l <= k->max_len; l++) {
		double cdf = l == k->max_len ? 1.0
			: 0.5 * erfc(-(log(l) - k->len_mu) / (k->len_sigma * sqrt(2)));
		m += l * (cdf - prev);
		prev = cdf;
	}
	return m;
}

static int gap_seconds(rng *r, const struct knobs *k)
{
	double g = exp(k->gap_mu + k->gap_sigma * rng_normal(r));
	return g > k->max_gap ? k->max_gap : (int)g;
}

static void format_uuid(char *out, rng *r)
{
	static const char hex[] = "0123456789abcdef";
	uint64_t a = rng_u64(r), b = rng_u64(r);
	int j = 0;
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			out[i] = '-';
			continue;
		}
		uint64_t *w = j < 16 ? &a : &b;
		out[i] = hex[*w & 15];
		*w >>= 4;
		j++;
	}
	out[14] = '4';                      /* version 4 */
	out[19] = hex[8 + (out[19] & 3)];   /* variant bits */
}

/* ------------------------------------------------------------ actions */

enum action { VIEW, CART, REMOVE, PURCHASE };
static const char *action_name[] = { "view", "cart", "remove_from_cart", "purchase" };

/* Index of a session item for product p, adding it if new. */
static int session_item(struct session *s, uint32_t p)
{
	for (int i = 0; i < s->nitems; i++)
		if (s->items[i].product == p)
			return i;
	if (s->nitems == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 8;
		s->items = xrealloc(s->items, s->cap * sizeof *s->items);
	}
	s->items[s->nitems] = (struct sitem){ p, 0, 0 };
	return s->nitems++;
}

/*
 * The next event of session s: its action and the session item it is about.
 * Everything a model could learn from is decided here.
 */
static enum action next_action(rng *r, const struct knobs *k, struct session *s,
			       int *item)
{
	if (s->ncart > 0) {
		/* a random carted item may be bought or removed */
		int c = (int)rng_below(r, (uint32_t)s->ncart), i;
		for (i = 0; i < s->nitems; i++)
			if (s->items[i].incart && c-- == 0)
				break;
		struct sitem *it = &s->items[i];
		int v = it->views < 10 ? it->views : 10;
		double p_buy = k->buy_base + k->buy_per_view * v + k->buy_per_cart * (s->ncart - 1);
		double p_rm = k->remove_base * cats[prods[it->product].cat].return_factor;
		double u = rng_unif(r);
		if (u < p_buy + p_rm) {
			it->incart = 0;
			s->ncart--;
			*item = i;
			return u < p_buy ? PURCHASE : REMOVE;
		}
	}
	if (s->last >= 0 && !s->items[s->last].incart) {
		struct sitem *it = &s->items[s->last];
		double p = k->cart_base + k->cart_per_view * (it->views - 1);
		if (rng_unif(r) < (p < k->cart_max ? p : k->cart_max)) {
			it->incart = 1;
			s->ncart++;
			*item = s->last;
			return CART;
		}
	}
	int i;
	if (s->nitems > 0 && rng_unif(r) < k->p_revisit) {
		i = (int)rng_below(r, (uint32_t)s->nitems);
	} else {
		uint32_t p = rng_unif(r) < k->p_focus ? pick_in_category(r, k, s->focus)
			: sample_cdf(prod_cdf, (uint32_t)k->nproducts, rng_unif(r));
		i = session_item(s, p);
	}
	s->items[i].views++;
	s->last = i;
	*item = i;
	return VIEW;
}

/* ------------------------------------------------------------ heap */

static struct session **heap;
static size_t nheap, capheap;

static inline int before(const struct session *a, const struct session *b)
{
	return a->t < b->t || (a->t == b->t && a->order < b->order);
}

static void heap_push(struct session *s)
{
	if (nheap == capheap) {
		capheap = capheap ? 2 * capheap : 1024;
		heap = xrealloc(heap, capheap * sizeof *heap);
	}
	size_t i = nheap++;
	while (i > 0 && before(s, heap[(i - 1) / 2])) {
		heap[i] = heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	heap[i] = s;
}

/* Restore the heap after heap[0] changed (or was replaced). */
static void heap_down(void)
{
	struct session *s = heap[0];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= nheap)
			break;
		if (c + 1 < nheap && before(heap[c + 1], heap[c]))
			c++;
		if (!before(heap[c], s))
			break;
		heap[i] = heap[c];
		i = c;
	}
	heap[i] = s;
}

static void heap_pop(void)
{
	heap[0] = heap[--nheap];
	if (nheap)
		heap_down();
}

/* ------------------------------------------------------------ time */

/* Relative traffic per hour of day, UTC (the shop's evening peak). */
static const double hourly[24] = {
	0.15, 0.10, 0.10, 0.20, 0.40, 0.60, 0.75, 0.85, 0.90, 0.95, 1.00, 1.00,
	1.00, 1.05, 1.10, 1.15, 1.20, 1.20, 1.10, 0.90, 0.65, 0.45, 0.30, 0.20,
};
static double hour_cum[31 * 24 + 1];

static void build_clock(void)
{
	hour_cum[0] = 0;
	for (int h = 0; h < 31 * 24; h++)
		hour_cum[h + 1] = hour_cum[h] + hourly[h % 24];
}

/* Map v in [0, 1) (uniform traffic) to seconds into the month (daily cycle). */
static int64_t warp(double v)
{
	double x = v * hour_cum[31 * 24];
	int lo = 0, hi = 31 * 24;
	while (hi - lo > 1) {
		int mid = (lo + hi) / 2;
		if (hour_cum[mid] <= x)
			lo = mid;
		else
			hi = mid;
	}
	double f = (x - hour_cum[lo]) / (hour_cum[lo + 1] - hour_cum[lo]);
	return (int64_t)(3600.0 * (lo + f));
}

/* "2019-10-DD HH:MM:SS UTC" for t seconds into the month. */
static void format_time(char *out, int64_t t)
{
	int d = (int)(t / 86400) + 1, s = (int)(t % 86400);
	int h = s / 3600, m = s / 60 % 60;
	s %= 60;
	memcpy(out, "2019-10-01 00:00:00 UTC", 23);
	out[8] = (char)('0' + d / 10); out[9] = (char)('0' + d % 10);
	out[11] = (char)('0' + h / 10); out[12] = (char)('0' + h % 10);
	out[14] = (char)('0' + m / 10); out[15] = (char)('0' + m % 10);
	out[17] = (char)('0' + s / 10); out[18] = (char)('0' + s % 10);
}

/* ------------------------------------------------------------ main */

static void usage(FILE *fp)
{
	fprintf(fp,
		"usage: gen-kaggle [-n ROWS] [-s SEED] [-p PRODUCTS] [-o FILE | FILE]\n"
		"Write a synthetic Kaggle-format clickstream CSV (2019-Oct.csv shape).\n"
		"  -n ROWS      rows to write, header excluded [1000000]\n"
		"  -s SEED      random seed [1]\n"
		"  -p PRODUCTS  catalogue size [200000]\n"
		"  -o FILE      output file; no file or '-' writes to stdout\n");
}

int main(int argc, char **argv)
{
	struct knobs k = defaults;
	long long nrows = 1000000;
	uint64_t seed = 1;
	const char *out = NULL;
	int opt;
	char *end;

	while ((opt = getopt(argc, argv, "n:s:p:o:h")) != -1) {
		switch (opt) {
		case 'n':
			errno = 0;
			nrows = strtoll(optarg, &end, 10);
			if (errno || *end || nrows < 0) {
				fprintf(stderr, "gen-kaggle: bad row count '%s'\n", optarg);
				return 2;
			}
			break;
		case 's':
			errno = 0;
			seed = strtoull(optarg, &end, 10);
			if (errno || *end) {
				fprintf(stderr, "gen-kaggle: bad seed '%s'\n", optarg);
				return 2;
			}
			break;
		case 'p':
			k.nproducts = strtol(optarg, &end, 10);
			if (*end || k.nproducts < 1 || k.nproducts > (1L << 25)) {
				fprintf(stderr, "gen-kaggle: bad product count '%s'\n", optarg);
				return 2;
			}
			break;
		case 'o':
			out = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc && !out)
		out = argv[optind++];
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	FILE *fp = stdout;
	if (out && strcmp(out, "-") != 0 && !(fp = fopen(out, "w"))) {
		fprintf(stderr, "gen-kaggle: cannot create '%s': %s\n", out, strerror(errno));
		return 1;
	}
	static char obuf[1 << 20];
	setvbuf(fp, obuf, _IOFBF, sizeof obuf);

	build_catalogue(&k, seed);
	build_clock();
	rng r;
	rng_seed(&r, seed);

	/* Sessions arrive as a Poisson process in warped time [0, 1), at the
	 * rate that spreads the rows still to come (less those the running
	 * sessions will emit) over the time left before VEND, half an hour
	 * before the month ends, so the last sessions can finish. */
	const double VEND = 1.0 - 0.5 / (31 * 24);
	double mlen = mean_length(&k);
	long long pending = 0;            /* events the running sessions still owe */
	double vnext = VEND * (1.0 - exp(log(1.0 - rng_unif(&r)) * mlen / (nrows + 1.0)));
	uint32_t pool = (uint32_t)(nrows / k.rows_per_user) + 1;
	uint64_t started = 0;
	struct session **free_list = NULL;
	size_t nfree = 0, capfree = 0;

	fputs("event_time,event_type,product_id,category_id,category_code,"
	      "brand,price,user_id,user_session\n", fp);
	char tbuf[24], line[512];
	int64_t tcached = -1;
	for (long long row = 0; row < nrows; row++) {
		/* At VEND arrivals stop, unless every session has ended. */
		int64_t tarr = warp(vnext);
		if (tarr < tcached)
			tarr = tcached;
		if (nheap == 0 || (vnext < VEND && tarr <= heap[0]->t)) {
			/* start a session */
			struct session *s;
			if (nfree) {
				s = free_list[--nfree];
			} else {
				s = xmalloc(sizeof *s);
				s->items = NULL;
				s->cap = 0;
			}
			s->t = tarr;
			s->order = started++;
			s->user = (uint32_t)(pool * pow(rng_unif(&r), k.user_skew));
			if (s->user >= pool)
				s->user = pool - 1;
			s->focus = rng_unif(&r) < k.p_taste
				? user_taste(seed, s->user, k.ncategories)
				: sample_cdf(cat_cdf, (uint32_t)k.ncategories, rng_unif(&r));
			s->left = session_length(&r, &k);
			s->last = -1;
			s->ncart = 0;
			s->nitems = 0;
			s->uidlen = utoa(s->uid, user_id(s->user));
			format_uuid(s->uuid, &r);
			heap_push(s);
			pending += s->left;
			/* the next arrival: an exponential step at the current rate,
			 * as a share of the time left, so it never passes VEND */
			double need = (nrows - row - pending) / mlen;
			if (need > 0)
				vnext += (VEND - vnext) * (1.0 - exp(log(1.0 - rng_unif(&r)) / need));
			else
				vnext = VEND;   /* wait until the running sessions run dry */
		}
		struct session *s = heap[0];
		int item;
		enum action a = next_action(&r, &k, s, &item);
		const struct product *p = &prods[s->items[item].product];
		int64_t t = s->t < MONTH_SECONDS ? s->t : MONTH_SECONDS - 1;
		if (t != tcached) {
			format_time(tbuf, t);
			tcached = t;
		}
		char *o = line;
		memcpy(o, tbuf, 23); o += 23;
		*o++ = ',';
		size_t an = strlen(action_name[a]);
		memcpy(o, action_name[a], an); o += an;
		*o++ = ',';
		memcpy(o, p->text, p->len); o += p->len;
		*o++ = ',';
		memcpy(o, s->uid, s->uidlen); o += s->uidlen;
		*o++ = ',';
		memcpy(o, s->uuid, 36); o += 36;
		*o++ = '\n';
		fwrite(line, 1, (size_t)(o - line), fp);

		pending--;
		if (--s->left > 0) {
			s->t += gap_seconds(&r, &k);
			heap_down();
		} else {
			heap_pop();
			if (nfree == capfree) {
				capfree = capfree ? 2 * capfree : 1024;
				free_list = xrealloc(free_list, capfree * sizeof *free_list);
			}
			free_list[nfree++] = s;
		}
	}
	if (fflush(fp) != 0 || ferror(fp) || (fp != stdout && fclose(fp) != 0)) {
		fprintf(stderr, "gen-kaggle: write error: %s\n", strerror(errno));
		return 1;
	}
	return 0;
}
