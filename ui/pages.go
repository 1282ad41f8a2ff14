package ui

// loginPage is the public login page.
var loginPage = Page{Path: "/login", Title: "Log in", Template: "login.html", Script: "login.js"}

// pages are the pages behind the login, in the navigation's order; the
// first is where "/" and a login without a "next" page lead.
var pages = []Page{
	{Path: "/alerts", Title: "Alerts", Template: "alerts.html", Script: "alerts.js"},
	{Path: "/policy", Title: "Policy", Template: "policy.html", Script: "policy.js"},
	{Path: "/traffic", Title: "Traffic", Template: "traffic.html", Script: "traffic.js"},
	{Path: "/plugins", Title: "Plugins", Template: "plugins.html", Script: "plugins.js"},
	{Path: "/users", Title: "Users", Template: "users.html", Script: "users.js", Roles: []string{"admin", "manager"}},
	{Path: "/account", Title: "Account", Template: "account.html", Script: "account.js"},
}
