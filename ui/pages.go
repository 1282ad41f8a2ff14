package ui

// loginPage is the public login page.
var loginPage = Page{Path: "/login", Title: "Log in", Template: "login.html", Script: "login.js"}

// pages are the pages behind the login, in the navigation's order; the
// first is where "/" and a login without a "next" page lead.
var pages = []Page{
	{Path: "/account", Title: "Account", Template: "account.html", Script: "account.js"},
}
