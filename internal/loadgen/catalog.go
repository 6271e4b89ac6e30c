package loadgen

// The made-up shop whose traffic the generator imitates. Plain ASCII
// throughout, so templates need no escaping beyond what encoding/json does.

type product struct {
	id, name string
	price    float64
}

var products = []product{
	{"sku-10421", "Trail Running Shoe", 129.95},
	{"sku-10877", "Merino Base Layer", 74.50},
	{"sku-11203", "Insulated Water Bottle 750ml", 29.00},
	{"sku-11548", "Lightweight Rain Jacket", 189.00},
	{"sku-12090", "Headlamp 400 Lumen", 44.99},
	{"sku-12317", "Trekking Poles Carbon", 99.90},
	{"sku-12764", "Down Sleeping Bag -5C", 279.00},
	{"sku-13002", "Wool Hiking Socks 3-Pack", 24.95},
	{"sku-13411", "Ultralight Tent 2P", 399.00},
	{"sku-13875", "GPS Sport Watch", 249.99},
	{"sku-14236", "Daypack 28L", 89.95},
	{"sku-14609", "Camping Stove Compact", 59.00},
}

type event struct {
	name     string
	path     string // page path; "%s" takes the product ID
	withCart bool   // carries a quantity
	order    bool   // Order Completed: totals instead of one product
	share    int    // templates of this event, out of 64: views dominate
}

var trackEvents = []event{
	{name: "Product Viewed", path: "/p/%s", share: 32},
	{name: "Product Clicked", path: "/collections/new", share: 10},
	{name: "Product Added", path: "/p/%s", withCart: true, share: 8},
	{name: "Product Added to Wishlist", path: "/p/%s", share: 5},
	{name: "Checkout Started", path: "/checkout", withCart: true, share: 5},
	{name: "Order Completed", path: "/checkout/thank-you", order: true, share: 4},
}

var referrers = []string{
	"https://www.google.com/",
	"https://www.bing.com/",
	"https://duckduckgo.com/",
	"https://www.instagram.com/",
	"", "", "", "", // typed in or bookmarked
}

type webClient struct{ locale, userAgent string }

var webClients = []webClient{
	{"en-GB", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"},
	{"sv-SE", "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"},
	{"de-DE", "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0"},
	{"fr-FR", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15"},
	{"nl-NL", "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36"},
}

type mobileClient struct {
	locale, model, osName, osVersion string
}

var mobileClients = []mobileClient{
	{"en-IE", "iPhone15,2", "iOS", "17.4.1"},
	{"es-ES", "SM-S911B", "Android", "14"},
	{"it-IT", "Pixel 7", "Android", "14"},
}

var (
	firstNames = []string{"Anna", "Ben", "Chloe", "David", "Elif", "Finn", "Greta", "Hugo", "Ines", "Jonas", "Katja", "Luca", "Maja", "Noah", "Olga", "Pierre"}
	lastNames  = []string{"Schmidt", "Dubois", "Rossi", "Jansen", "Kowalski", "Garcia", "Novak", "Larsen", "Murphy", "Silva", "Nagy", "Berg"}
	plans      = []string{"free", "free", "pro", "business"}
)
